"""The repeat scorer: WER of what the model says back, per item and per engine/speaker, in audio, text and
cascade mode through eval/voicebench.py (the model and the ASR are stand-ins, so the numbers are known)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lalm.eval import asr, voicebench
from lalm.eval.models import KitResponder, Reply
from lalm.eval.scoring import REPEAT_INSTRUCTION, SUBSETS, score_subset
from lalm.jsonl import read_jsonl_skip_torn_tail
from tests.helpers import write_manifest

ROWS = [
    {"id": "a", "freq": 220, "text": "the cat sat on the mat", "speaker": "s1", "meta": {"engine": "piper"}},
    {"id": "b", "freq": 330, "text": "a dog ran home", "speaker": "s2", "meta": {"engine": "kokoro"}},
    {"id": "c", "freq": 440, "text": "hello there", "speaker": "s1", "meta": {"engine": "piper"}},
]


def test_repeat_scores_wer_of_the_repeated_words():
    items = [
        {"id": "a", "text": "The cat sat on the mat.", "response": 'Sure. You said: "the cat sat on a mat"',
         "meta": {"engine": "piper", "voice": "joe"}, "eval_mode": "audio", "eval_transcript": "the cat sat"},
        {"id": "b", "text": "a dog ran home", "response": "a dog ran home", "speaker": "s2",
         "meta": {"engine": "kokoro"}, "eval_mode": "cascade", "eval_transcript": "a dog ran home"},
        {"id": "c", "prompt": "hello there", "response": "I cannot help with that today at all"},
    ]
    results, summary = score_subset("repeat", items)
    assert [r["wer"] for r in results] == [pytest.approx(1 / 6), 0.0, 4.0]
    assert results[0]["repeated"] == "the cat sat on a mat"  # the quoted words, not the lead-in
    assert results[0]["heard"] == "the cat sat" and results[0]["heard_wer"] == pytest.approx(0.5)
    assert "heard" not in results[1]  # in cascade mode the transcript is the ASR's, not the model's
    assert summary["wer"] == pytest.approx(9 / 12) and summary["words"] == 12
    assert summary["score"] == pytest.approx(25.0) and summary["n"] == 3
    assert summary["by_engine"] == {"kokoro": {"wer": 0.0, "n": 1}, "piper": {"wer": pytest.approx(1 / 6), "n": 1}}
    assert summary["by_speaker"] == {"s2": {"wer": 0.0, "n": 1}}
    assert summary["by_voice"] == {"joe": {"wer": pytest.approx(1 / 6), "n": 1}}
    assert score_subset("repeat", [{"text": "one", "response": "two three four"}])[1]["score"] == 0.0
    assert SUBSETS["repeat"].instruction == REPEAT_INSTRUCTION


class EchoModel:
    """Says back the words it is sent (text and cascade) and a fixed reply for audio, with what it heard."""

    def respond(self, requests):
        replies = []
        for request in requests:
            if request.audio is not None:
                assert request.text == REPEAT_INSTRUCTION
                replies.append(Reply(response='You said: "the cat sat on the hat"', transcript="the cat sat"))
            else:
                assert request.text.endswith("\n" + REPEAT_INSTRUCTION)
                replies.append(Reply(response=request.text.split('"')[1]))
        return replies


def test_voicebench_repeat_in_every_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_checkpoint: Path):
    monkeypatch.setattr(KitResponder, "from_checkpoint", classmethod(lambda cls, *a, **k: EchoModel()))
    monkeypatch.setattr(asr, "load_asr", lambda path: lambda waves: ["a dog ran home"] * len(waves))
    manifest = write_manifest(tmp_path / "data", ROWS, "real.jsonl")
    out = tmp_path / "run"
    code = voicebench.main(["--model", str(tiny_checkpoint), "--manifest", str(manifest), "--subset", "mine",
                            "--scorer", "repeat", "--mode", "all", "--asr", "fake", "--out", str(out),
                            "--no-progress"])
    assert code == 0
    audio = {r["id"]: r for r in read_jsonl_skip_torn_tail(out / "mine.audio.jsonl")}
    assert audio["a"]["response"] == 'You said: "the cat sat on the hat"' and audio["a"]["wer"] == pytest.approx(1 / 6)
    assert audio["a"]["heard"] == "the cat sat" and audio["a"]["input_text"] == REPEAT_INSTRUCTION
    cascade = {r["id"]: r for r in read_jsonl_skip_torn_tail(out / "mine.cascade.jsonl")}
    assert cascade["b"]["transcript"] == "a dog ran home" and cascade["b"]["wer"] == 0.0
    assert "heard" not in cascade["b"]
    text = {r["id"]: r for r in read_jsonl_skip_torn_tail(out / "mine.text.jsonl")}
    assert text["c"]["input_text"] == f'Audio transcript: "hello there"\n{REPEAT_INSTRUCTION}'
    modes = json.loads((out / "summary.json").read_text())["sets"]["mine"]["modes"]
    assert modes["text"]["wer"] == 0.0 and modes["text"]["score"] == 100.0
    assert modes["cascade"]["by_engine"]["kokoro"] == {"wer": 0.0, "n": 1}
    assert modes["audio"]["by_speaker"]["s2"]["wer"] == 1.5  # "a dog ran home" said back as the cat sentence
    assert modes["audio"]["transcript_wer"] is not None
    markdown = (out / "summary.md").read_text()
    assert "WER by engine: kokoro" in markdown and "WER by speaker: s1" in markdown
