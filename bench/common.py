"""Helpers shared by the benchmarks: synthetic corpora and result printing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lalm.audio import audio_io


def synthetic_corpus(directory: Path, n: int, seed: int = 0, min_s: float = 2.0, max_s: float = 20.0,
                     mean_s: float = 8.0, target_words: int = 30) -> Path:
    """Noise clips with realistic lengths (gamma-distributed, clipped) and SIFT-shaped rows."""
    sf = audio_io("soundfile")
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    shape = 4.0
    lengths = np.clip(rng.gamma(shape, mean_s / shape, size=n), min_s, max_s)
    words = ["the", "a", "of", "to", "and", "in", "is", "it", "you", "that", "he", "was", "for", "on", "are", "with", "as", "his", "they", "at", "be", "this"]
    with (directory / "sift.jsonl").open("w") as f:
        for i, seconds in enumerate(lengths):
            wav = (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
            sf.write(directory / f"{i}.wav", wav, 16000)
            answer = " ".join(rng.choice(words, size=target_words))
            f.write(json.dumps({"id": str(i), "audio": f"{i}.wav", "response": answer, "duration": float(seconds)}) + "\n")
    return directory / "sift.jsonl"


def report(title: str, rows: list[tuple[str, float, str]], baseline: str) -> None:
    """Print a table of (name, value, unit) with each value's ratio to the baseline row."""
    base = {name: value for name, value, _ in rows}[baseline]
    print(f"\n{title}")
    print(f"| variant | value | ratio vs {baseline} |")
    print("| --- | --- | --- |")
    for name, value, unit in rows:
        print(f"| {name} | {value:.2f} {unit} | {value / base:.2f}x |")
