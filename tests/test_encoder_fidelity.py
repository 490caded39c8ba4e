"""bench/encoder_fidelity.py at tiny shape: every mode runs, stock padding reproduces stock Whisper."""

import shutil

import pytest

from lalm.bench.encoder_fidelity import main


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_fidelity_benchmark_runs_at_tiny_shape(tmp_path, capsys):
    results = main(["--tiny", "--clips", "3", "--min-seconds", "1", "--max-seconds", "3", "--max-tokens", "4",
                    "--json", str(tmp_path / "fidelity.json")])
    by_mode = {r["mode"]: r for r in results}
    assert set(by_mode) == {"stock", "pad30", "real", "tail0.5", "tail1", "tail2", "tail4", "pad10", "pad15"}
    assert by_mode["pad30"]["cos_min"] > 0.999 and by_mode["pad30"]["rel_l2"] < 1e-2  # the kit's 30 s path is stock
    assert all(0 <= r["wer"] for r in results) and all(r["ms_per_clip"] > 0 for r in results)
    assert "| stock | 1.0000 |" in capsys.readouterr().out
    assert (tmp_path / "fidelity.json").is_file()
