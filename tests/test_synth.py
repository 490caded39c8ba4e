"""Spoken-set synthesis with espeak-ng: 16 kHz wavs, the documented manifest, reproducible voices, resume."""

from __future__ import annotations

import json
import shutil

import pytest
import soundfile as sf

from lalm.data_gen import synthesize
from lalm.data_gen.tts import EspeakTTS
from lalm.data_gen.voices import parse_voices
from lalm.jsonl import read_jsonl

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

QUESTIONS = [
    {"id": "q1", "prompt": "What is the capital of France?", "reference": "Paris"},
    {"id": "q2", "prompt": "How many legs does a spider have?", "answers": ["eight", "8"]},
    {"id": "asr/3", "text": "I am so glad you came.", "meta": {"emotion": "happy"}},
    {"id": "q4", "prompt": "  "},
]


def synth(tmp_path, out_name="spoken", *extra):
    source = tmp_path / "questions.jsonl"
    source.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    out = tmp_path / out_name
    code = synthesize.main(["--input", str(source), "--out-dir", str(out), "--seed", "3", *extra])
    return code, out, read_jsonl(out / "manifest.jsonl")


def test_manifest_rows_and_wavs(tmp_path):
    code, out, rows = synth(tmp_path)
    assert code == 0  # a row with nothing to speak is a reject, not a failure
    by_id = {r["id"]: r for r in rows}
    assert sorted(by_id) == ["asr/3", "q1", "q2"]
    q1 = by_id["q1"]
    assert q1["audio"] == "wavs/q1.wav" and q1["text"] == "What is the capital of France?"
    assert q1["reference"] == "Paris" and q1["prompt"] == q1["text"]
    assert by_id["q2"]["answers"] == ["eight", "8"]
    assert by_id["asr/3"]["text"] == "I am so glad you came." and by_id["asr/3"]["meta"]["emotion"] == "happy"
    for row in rows:
        info = sf.info(out / row["audio"])
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert row["duration"] == pytest.approx(info.frames / 16000, abs=1e-3) and row["duration"] > 0.5
        meta = row["meta"]
        assert meta["gender"] == EspeakTTS.VOICES[meta["voice"]]
        assert 140 <= meta["speed"] <= 190 and 35 <= meta["pitch"] <= 65
    rejects = read_jsonl(out / "manifest.rejects.jsonl")
    assert rejects == [{"line": 4, "id": "q4", "reason": "text: no text to speak in `prompt` or `text` (got '  ')"}]


def test_voices_are_reproducible_and_a_rerun_resumes(tmp_path):
    _, out, rows = synth(tmp_path)
    _, _, again = synth(tmp_path, "again")
    assert [r["meta"] for r in rows] == [r["meta"] for r in again]
    (out / "wavs" / "q2.wav").unlink()
    synth(tmp_path)
    summary = json.loads((out / "manifest.summary.json").read_text())
    assert summary["done_before"] == 2 and summary["synthesized"] == 1
    rows_after = read_jsonl(out / "manifest.jsonl")
    assert sorted(r["id"] for r in rows_after) == ["asr/3", "q1", "q2"]
    assert (out / "wavs" / "q2.wav").exists()


def test_voice_choice_and_synthesis_failures(tmp_path):
    _, out, rows = synth(tmp_path, "one_voice", "--voices", "en+f2")
    assert {r["meta"]["voice"] for r in rows} == {"en+f2"} and {r["meta"]["gender"] for r in rows} == {"female"}
    _, out, rows = synth(tmp_path, "bad_voice", "--voices", "zz-nonexistent=male")
    rejects = read_jsonl(out / "manifest.rejects.jsonl")
    assert rows == [] and len(rejects) == 4 and rejects[0]["reason"].startswith("tts: espeak-ng -v zz-nonexistent")
    with pytest.raises(ValueError, match="not in the catalogue"):
        parse_voices("en+zz")
