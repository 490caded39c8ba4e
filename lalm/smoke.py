"""Build an LALM from a config, run one training step and one generation on a clip.

    python -m lalm.smoke                                    # tiny random models, seconds
    python -m lalm.smoke --config configs/offline_small.yaml --audio question.wav
    python -m lalm.smoke --config configs/tiny.yaml model.llm.lora.enabled=true

It proves an install works end to end: the config validates, weights load, the audio splices into
the prompt, gradients reach only the trainable parts, and the model generates.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lalm.audio import load_audio
from lalm.clips import pad_waveforms
from lalm.config import load_config
from lalm.errors import run_command
from lalm.model import LALM
from lalm.paths import kit_config
from lalm.processor import collate

DEFAULT_CONFIG = kit_config("tiny.yaml")
SPOKEN = "What is the capital of France?"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="yaml config (default: configs/tiny.yaml)")
    parser.add_argument("--audio", help=f"a wav/flac/ogg/mp3 clip; default: espeak-ng says {SPOKEN!r} (a tone without espeak-ng)")
    parser.add_argument("--prompt", default="", help="text sent after the audio in the user turn")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("overrides", nargs="*", help="config overrides, key.sub=value")
    args = parser.parse_args(argv)

    cfg = load_config(args.config, args.overrides)
    start = time.perf_counter()
    model = LALM(cfg.model)
    print(f"built from {args.config} in {time.perf_counter() - start:.1f} s; {model.parameter_report()}")
    clip = load_audio(args.audio) if args.audio else default_clip()
    print(f"audio: {len(clip) / 16000:.2f} s -> {model.processor.audio_positions(len(clip))} LLM positions")

    model.train()
    example = model.processor.encode([{"role": "user", "content": [{"type": "audio"}]}], [len(clip)], target="Paris.")
    batch = collate([example], model.tokenizer.pad_token_id)
    batch["waveforms"], batch["wave_lengths"] = pad_waveforms([torch.from_numpy(clip)])
    out = model(**{k: v.to(model.device) for k, v in batch.items()})
    loss = out["loss_sum"] / out["num_tokens"]
    loss.backward()
    graded = sum(p.numel() for p in model.parameters() if p.grad is not None)
    print(f"training step: loss {loss.item():.3f} over {int(out['num_tokens'])} "
          f"target tokens; {graded:,} parameters got gradients")

    model.eval()
    start = time.perf_counter()
    answer = model.generate([clip], args.prompt, max_new_tokens=args.max_new_tokens)
    print(f"generated in {time.perf_counter() - start:.1f} s: {answer!r}")


def default_clip() -> np.ndarray:
    """A spoken question from espeak-ng when installed, else a 2 s tone."""
    if shutil.which("espeak-ng"):
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "q.wav"
            subprocess.run(["espeak-ng", "-v", "en+m3", "-w", str(wav), SPOKEN], check=True)
            return load_audio(wav)
    t = np.arange(32000) / 16000
    return (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def cli() -> int:
    """The installed command (see [project.scripts] in pyproject.toml)."""
    return run_command(main)


if __name__ == "__main__":
    sys.exit(cli())
