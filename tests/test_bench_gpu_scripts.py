"""bench/gpu_all.sh's scripts run end to end (tiny shape, CPU), so a lent GPU's few minutes are never
spent finding that one of them no longer starts."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

RUNS = {
    "shapes": ["bench/shapes.py"],
    "train_step": ["bench/train_step.py", "--shape", "tiny", "--clips", "8", "--batch-seconds", "30",
                   "--max-batch-size", "4", "--warmup", "1", "--repeats", "1"],
    "decode_floor": ["bench/decode_floor.py", "--shape", "tiny", "--batch-sizes", "1,4", "--new-tokens", "4",
                     "--repeats", "1"],
    "inference_latency": ["bench/inference_latency.py", "--shape", "tiny", "--new-tokens", "4", "--repeats", "1"],
}


@pytest.mark.parametrize("name", list(RUNS))
def test_gpu_bench_script_runs_on_the_tiny_shape(name, tmp_path):
    done = subprocess.run([sys.executable, *RUNS[name]], cwd=ROOT, env={**os.environ, "OUT": str(tmp_path)},
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    if name != "shapes":
        saved = json.loads((tmp_path / f"{name}_tiny.json").read_text())
        assert saved["shape"] == "tiny" and saved["command"].startswith(f"python bench/{name}.py")
