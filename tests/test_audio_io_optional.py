"""The in-memory paths (the GPU benchmarks, a model fed arrays) need neither soundfile nor soxr."""

import subprocess
import sys

SCRIPT = """
import sys
sys.modules["soundfile"] = None  # what `import soundfile` meets where it is not installed
sys.modules["soxr"] = None
import runpy
for name in ("shapes", "train_step", "decode_floor", "inference_latency"):
    sys.argv = [name, "--help"]
    try:
        runpy.run_module(f"lalm.bench.{name}", run_name="__main__")
    except SystemExit as stop:
        assert stop.code == 0, (name, stop.code)
import numpy as np
from lalm.audio import load_audio, prepare_waveform
assert prepare_waveform(np.zeros(1600, np.float32), 16000).shape == (1600,)
try:
    load_audio(__file__ if "__file__" in dir() else "x.wav")
except ImportError as err:
    print("IMPORT-ERROR:", err)
try:
    prepare_waveform(np.zeros(800, np.float32), 8000)
except ImportError as err:
    print("IMPORT-ERROR:", err)
"""


def test_kit_imports_and_benchmarks_start_without_soundfile_or_soxr(tmp_path):
    (tmp_path / "x.wav").write_bytes(b"")
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    errors = [line for line in done.stdout.splitlines() if line.startswith("IMPORT-ERROR:")]
    assert len(errors) == 2
    assert "pip install soundfile" in errors[0] and "pip install soxr" in errors[1]
