"""Pace labels measured from text and audio, and questions about the voice (SIFT inputs, checks, eval sets)."""

import json
from collections import Counter

import numpy as np

from lalm.data_gen import voice_qa
from lalm.data_gen.pace import FAST_ABOVE, SLOW_BELOW, pace_meta, speech_seconds, syllables


def test_syllables_and_speech_seconds():
    assert syllables("The cat sat") == 3
    assert syllables("make a table") == 1 + 1 + 2  # silent final e, "-le" kept
    wave = np.zeros(16000 * 3, dtype=np.float32)
    wave[16000:32000] = 0.5 * np.sin(np.arange(16000) / 5)
    assert abs(speech_seconds(wave) - 1.0) < 0.05  # the silence either side is not speech


def test_pace_labels_follow_the_bounds():
    wave = np.full(16000, 0.3, dtype=np.float32)  # one second of "speech"
    slow = " ".join(["cat"] * int(SLOW_BELOW - 1))
    fast = " ".join(["cat"] * int(FAST_ABOVE + 2))
    assert pace_meta(slow, wave)["pace"] == "slow"
    assert pace_meta(fast, wave)["pace"] == "fast"
    assert pace_meta(" ".join(["cat"] * round((SLOW_BELOW + FAST_ABOVE) / 2)), wave)["pace"] == "medium"


def manifest(tmp_path, rows):
    path = tmp_path / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


ROWS = [{"id": f"r{i}", "audio": f"wavs/r{i}.wav", "text": "hello there",
         "meta": {"gender": g, "pace": p}}
        for i, (g, p) in enumerate([("male", "fast"), ("male", "slow"), ("male", "medium"), ("female", "fast"),
                                    ("male", "fast")])]


def test_sift_inputs_balance_labels_and_skip_unknown(tmp_path):
    counts = voice_qa.sift_inputs(manifest(tmp_path, ROWS), tmp_path / "v", voice_qa.load_questions())
    assert counts == {"gender": {"female": 1, "male": 1}, "pace": {"fast": 1, "slow": 1}}
    pace_rows = [json.loads(line) for line in (tmp_path / "v" / "pace.jsonl").read_text().splitlines()]
    assert all(r["meta"]["pace"] != "medium" for r in pace_rows)
    assert all(r["audio"].startswith(str(tmp_path)) for r in pace_rows)


def test_sift_inputs_balance_within_a_field_leaves_out_values_with_one_label(tmp_path):
    """Every festival voice male: festival rows would teach "festival, so male"; they are left out, and
    each engine that has both labels gives as many of each (a cap shrinks every engine alike)."""
    cells = {("espeak", "female"): 6, ("espeak", "male"): 10, ("kokoro", "female"): 8, ("kokoro", "male"): 2,
             ("festival", "male"): 9}
    rows = [{"id": f"{e}{g}{i}", "audio": f"w/{e}{g}{i}.wav", "text": "hi", "meta": {"gender": g, "engine": e}}
            for (e, g), n in cells.items() for i in range(n)]
    path = manifest(tmp_path, rows)
    counts = voice_qa.sift_inputs(path, tmp_path / "v", voice_qa.load_questions(), within="engine")
    kept = [json.loads(line)["meta"] for line in (tmp_path / "v" / "gender.jsonl").read_text().splitlines()]
    tally = Counter((m["engine"], m["gender"]) for m in kept)
    assert tally == {("espeak", "female"): 6, ("espeak", "male"): 6, ("kokoro", "female"): 2, ("kokoro", "male"): 2}
    assert counts["gender"] == {"female": 8, "male": 8} and "pace" not in counts
    voice_qa.sift_inputs(path, tmp_path / "c", voice_qa.load_questions(), within="engine", max_per_label=4)
    kept = [json.loads(line)["meta"] for line in (tmp_path / "c" / "gender.jsonl").read_text().splitlines()]
    assert Counter((m["engine"], m["gender"]) for m in kept) == {("espeak", "female"): 3, ("espeak", "male"): 3,
                                                               ("kokoro", "female"): 1, ("kokoro", "male"): 1}
    plain = voice_qa.sift_inputs(path, tmp_path / "p", voice_qa.load_questions())  # overall balance only
    assert plain["gender"] == {"female": 14, "male": 14}
    assert voice_qa.main(["sift-inputs", "--manifest", str(path), "--out-dir", str(tmp_path / "x"),
                          "--no-balance", "--balance-within", "engine"]) != 0


def test_check_keeps_right_answers_and_templates_wrong_ones(tmp_path):
    sift = tmp_path / "sift.jsonl"
    rows = [{"id": "a", "meta": {"pace": "slow speech"}, "response": "The speaker is talking slow and calm."},
            {"id": "b", "meta": {"pace": "slow speech"}, "response": "They speak fast, not slow."},
            {"id": "c", "meta": {"pace": "fast speech"}, "response": "I cannot tell."}]
    sift.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = voice_qa.check(sift, "pace", tmp_path / "out.jsonl", voice_qa.load_questions())
    assert summary == {"field": "pace", "kept": 1, "replaced": 2}
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert out[0]["response"] == rows[0]["response"]
    assert out[1]["response"] == "The speaker is talking slow." and out[1]["llm_response"] == rows[1]["response"]
    assert out[2]["response"] == "The speaker is talking fast."


def test_eval_set_asks_each_known_label(tmp_path):
    counts = voice_qa.eval_set(manifest(tmp_path, ROWS), tmp_path / "eval.jsonl", voice_qa.load_questions())
    assert counts == {"gender=male": 4, "gender=female": 1, "pace=fast": 3, "pace=slow": 1}
    items = [json.loads(line) for line in (tmp_path / "eval.jsonl").read_text().splitlines()]
    first = items[0]
    assert first["choices"] == ["female", "male"] and first["reference"] == "male"
    assert first["prompt"] == "hello there (male, fast speech)\n\nIs the speaker male or female?"


def test_command_reports_a_bad_questions_file(tmp_path, capsys):
    bad = tmp_path / "q.json"
    bad.write_text("{}")
    assert voice_qa.main(["--questions", str(bad), "eval-set", "--manifest", "x", "--out", "y"]) == 2
    assert capsys.readouterr().err.startswith("error: --questions")
