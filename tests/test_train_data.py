"""train/data.py reading training sources: every unusable row is a named skip, never a crash."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from lalm.train.config import DataConfig, SourceConfig
from lalm.train.data import SkipLog, load_rows, read_source


def clip(path, seconds: float) -> None:
    sf.write(path, 0.1 * np.sin(np.arange(int(seconds * 16000)) * 0.05).astype(np.float32), 16000)


def test_rows_of_unexpected_shape_or_text_are_named_skips(tmp_path):
    clip(tmp_path / "a.wav", 1.0)
    good = {"id": "a", "audio": "a.wav", "response": "fine"}
    lines = [
        json.dumps(good).encode(),
        b'{"id": "latin", "audio": "a.wav", "response": "caf\xe9"}',
        b"[1, 2]",
        json.dumps({**good, "id": "null audio", "audio": None}).encode(),
        json.dumps({**good, "id": "number audio", "audio": 7}).encode(),
        json.dumps({**good, "id": "text duration", "duration": "1.5"}).encode(),
        b'{"id": "nan duration", "audio": "a.wav", "response": "x", "duration": NaN}',
        json.dumps({**good, "id": "number prompt", "instruction": 3}).encode(),
        json.dumps({**good, "id": "text flag", "truncated": "false"}).encode(),
        json.dumps({**good, "id": "ok with duration", "duration": 1.0}).encode(),
    ]
    source = tmp_path / "sift.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    skips = SkipLog()
    rows = read_source(0, SourceConfig(path=str(source)), 30.0, "text", skips)
    assert [r.id for r in rows] == ["a", "ok with duration"]
    reasons = {e["where"]: e["reason"] for e in skips.entries}
    assert reasons == {
        f"{source}:2": "not UTF-8 text (byte 0xe9 at character 51)",
        f"{source}:3": "expected a JSON object, got list",
        f"{source}:4": "audio: expected a file path, got None",
        f"{source}:5": "audio: expected a file path, got 7",
        f"{source}:6": "duration: expected a positive number of seconds, got '1.5'",
        f"{source}:7": "duration: expected a positive number of seconds, got nan",
        f"{source}:8": "instruction: expected text or null as the prompt, got 3",
        f"{source}:9": "truncated: expected true or false, got 'false'",
    }


def test_the_audio_header_not_the_row_says_how_long_a_clip_is(tmp_path):
    clip(tmp_path / "short.wav", 0.5)
    clip(tmp_path / "long.wav", 45.0)
    source = tmp_path / "sift.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in [
        {"id": "lies", "audio": "long.wav", "response": "x", "duration": 1.0},
        {"id": "gone", "audio": "missing.wav", "response": "x", "duration": 1.0},
        {"id": "short", "audio": "short.wav", "response": "x", "duration": 9.0},
        {"id": "again", "audio": str(tmp_path / "short.wav"), "response": "y"},
    ]) + "\n")
    skips = SkipLog()
    rows, valid, _ = load_rows(DataConfig(train=[SourceConfig(path=str(source))], valid_fraction=0.0,
                                          max_audio_seconds=30.0), "text", skips)
    assert [(r.id, r.duration) for r in rows] == [("short", 0.5), ("again", 0.5)] and valid == []
    assert [(e["where"], e["reason"]) for e in skips.entries] == [
        (f"{source}:1", f"{tmp_path / 'long.wav'}: 45.0 s (the row says 1.0 s) is over data.max_audio_seconds=30.0"),
        (f"{source}:2", f"{tmp_path / 'missing.wav'}: no such audio file"),
    ]
    assert rows[0].where == f"{source}:3"


def test_a_skip_log_lists_each_row_once():
    skips = SkipLog()
    assert skips.add("a.jsonl:3", "bad") and not skips.add("a.jsonl:3", "bad again")
    assert skips.add("a.jsonl:4", "decode failed", found="loading")
    assert len(skips) == 2 and skips.found_loading() == [
        {"where": "a.jsonl:4", "reason": "decode failed", "found": "loading"}]
