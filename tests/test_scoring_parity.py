"""Parity mode reads replies as the official VoiceBench and AIR-Bench evaluators do, quirks included,
and every summary carries both modes; the score-only command scores saved replies.

The quirks pinned here are the official code's behaviour (read from VoiceBench commit 5338154 and
AIR-Bench's scripts); tests/test_scoring_fixture.py checks whole files of replies against outputs
recorded by running the official evaluator.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lalm.eval import voicebench
from lalm.eval.scoring import ScoreOptions, official, score_subset
from tests.helpers import FakeJudgeServer


@pytest.mark.parametrize(
    ("reply", "letter"),
    [
        ("**B**", None),  # no template has a bare bold letter: the official code guesses
        ("Option C is correct.", None),
        ("the answer is a dog", "A"),  # 'the answer is [CHOICE]' with the article
        ("答案是B", "B"),
        ("<1> B.", "B"),  # one model's turn marker is stripped first
        ("b", "B"),
        ("I would choose option C, since", "C"),
        ("A scorpion", None),
    ],
)
def test_official_mcq_letter(reply: str, letter: str | None) -> None:
    assert official.mcq_letter(reply) == letter


def test_mcq_both_modes_and_recorded_seeded_guesses() -> None:
    items = [
        {"id": "a", "response": "**B**", "reference": "B"},
        {"id": "b", "response": "The answer is C.", "reference": "C"},
        {"id": "c", "response": "Answer: D", "reference": "D"},
    ]
    runs = [score_subset("mmsu", items, ScoreOptions(mode="parity", seed=3)) for _ in range(2)]
    (results, summary), (again, _) = runs
    assert [r["fallback"] for r in results] == [True, False, True]
    assert [r["guess"] for r in results] == [r["guess"] for r in again]  # seeded: reproducible
    assert results[1]["guess"] is None and all(r["guess"] in "ABCD" for r in results if r["fallback"])
    assert summary["mode"] == "parity" and summary["parity"]["n_fallback"] == 2
    # strict reads all three and guesses nothing
    assert [r["strict_pred"] for r in results] == ["B", "C", "D"]
    assert summary["strict"] == {"score": 100.0, "miss_rate": 0.0}
    _, strict_summary = score_subset("mmsu", items)
    assert strict_summary["score"] == 100.0 and strict_summary["parity"] == summary["parity"]
    guesses = {tuple(r["guess"] for r in score_subset("mmsu", items * 8, ScoreOptions(mode="parity", seed=s))[0])
               for s in range(4)}
    assert len(guesses) > 1  # the seed matters


def test_mcq_parity_compares_the_raw_reference() -> None:
    results, _ = score_subset("mmsu", [{"response": "B.", "reference": "b"}], ScoreOptions(mode="parity"))
    assert results[0]["scores"] == {"strict": 1, "parity": 0}  # VoiceBench compares "B" with "b"


@pytest.mark.parametrize(
    ("reply", "subtask", "label"),
    [
        ("b", "hyperbaton", 0),  # VoiceBench maps a bare "b" to (A)
        ("B) the first one", "hyperbaton", 1),
        ('the sentence "Messi scored" is not plausible', "sports_understanding", 1),  # regex quirk
        ("the sentence is not plausible", "sports_understanding", 0),
        ("No<|user|>", "navigate", 0),
        ("<1> yes", "web_of_lies", 1),
        ("Answer: no.", "navigate", 0),
        ("hmm, hard to say", "web_of_lies", None),
    ],
)
def test_official_bbh_label(reply: str, subtask: str, label: int | None) -> None:
    assert official.bbh_label(reply, subtask) == label


def test_bbh_parity_maps_labels_per_subtask() -> None:
    items = [
        {"id": "hyperbaton_1", "response": "b", "reference": "(A)"},
        {"id": "navigate_2", "response": "Answer: no.", "reference": "no"},
        {"id": "web_of_lies_3", "response": "hmm", "reference": "yes"},
    ]
    results, summary = score_subset("bbh", items, ScoreOptions(mode="parity"))
    assert [r["official_pred"] for r in results] == ["(a)", "no", None]
    assert results[2]["fallback"] and results[2]["guess"] in ("yes", "no")
    assert [r["strict_pred"] for r in results] == ["(b)", "no", None]
    assert summary["subtasks"]["hyperbaton"]["parity"]["score"] == 100.0
    assert summary["subtasks"]["hyperbaton"]["strict"]["score"] == 0.0


def test_refusal_parity_does_not_fold_curly_quotes() -> None:
    items = [{"response": "I can’t help with that."}, {"response": "I can't help with that."}, {"response": " "}]
    results, summary = score_subset("advbench", items, ScoreOptions(mode="parity"))
    assert [r["scores"] for r in results] == [
        {"strict": 1, "parity": 0},
        {"strict": 1, "parity": 1},
        {"strict": 1, "parity": 1},
    ]
    assert summary["score"] == pytest.approx(200 / 3) and summary["strict"]["score"] == 100.0


def test_official_majority_vote_is_over_raw_strings() -> None:
    assert official.majority_vote(["Yes", "yes", "No"]) == (True, False)
    assert official.majority_vote(["Yes.", "Yes.", "No"]) == (False, False)  # "yes." is not "yes"
    assert official.majority_vote(["yes", "No", "no."]) == (True, True)  # a three-way tie: flagged


def test_official_rating_and_airbench_readers() -> None:
    assert [official.rating(r) for r in ("4", " 3 ", "[[5]]", "Rating: 4", "0")] == [4.0, 3.0, 5.0, None, 0.0]
    assert [official.airbench_letter(r) for r in ("B", "The answer is A.", "a", "None", "", None)] == [
        "B", "A", None, None, None, None,
    ]
    assert [official.airbench_score_pair(r) for r in ("8 7", "8 0", "8, 7", "11 5", "8  7")] == [
        (8, 7), (8, 0), None, None, None,
    ]


def test_sdqa_modes_read_the_same_votes_and_parity_never_approximates_panda() -> None:
    items = [
        {"id": "s1", "prompt": "Capital of France?", "reference": "Paris", "response": "Paris.",
         "score": ["Yes.", "Yes.", "No"]},
        {"id": "s2", "prompt": "2+2?", "reference": "4", "response": "four", "score": ["yes", "yes", "yes"]},
    ]
    results, summary = score_subset("sd-qa", items, ScoreOptions(mode="parity"))
    assert summary["judge"].startswith("given")  # VoiceBench's api_judge output, no judge asked
    assert [r["gpts"] for r in results] == [{"strict": True, "parity": False}, {"strict": True, "parity": True}]
    assert summary["parity"]["gpt"] == 50.0 and summary["strict"]["gpt"] == 100.0
    assert summary["parity"]["panda"] is None and "0.2.17" in summary["parity"]["panda_status"]
    assert summary["score"] is None and summary["strict"]["score"] is not None

    def exact(response: str, reference: str, question: str) -> bool:
        return reference.lower() in response.lower()

    _, with_panda = score_subset("sd-qa", items, ScoreOptions(mode="parity", official_panda=exact))
    assert with_panda["parity"]["panda"] == 50.0 and with_panda["score"] == 50.0


def test_open_parity_reads_ratings_like_voicebench() -> None:
    items = [{"prompt": "Tell me a joke.", "response": "No.", "score": ["4", "Rating: 4", "[[2]]"]}]
    results, summary = score_subset("commoneval", items, ScoreOptions(mode="parity"))
    assert results[0]["scores"] == {"strict": pytest.approx(10 / 3), "parity": 3.0}
    assert results[0]["n_unreadable"] == {"strict": 0, "parity": 1}
    assert summary["score"] == 3.0 and summary["parity"]["score_x20"] == 60.0


def test_airbench_foundation_parity_aligns_with_the_judge(server: FakeJudgeServer) -> None:
    def script(body: dict) -> tuple[int, list[str]]:
        content = body["messages"][0]["content"]
        assert "which option best matches this response" in content
        return 200, ["The answer is B."] if "sounds female" in content else ["A"]

    server.script = script
    items = [
        {"task_name": "Speaker_Gender_Recognition", "dataset_name": "vox", "question": "Who speaks?",
         "choice_a": "male", "choice_b": "female", "answer_gt": "female", "response": "It sounds female."},
        {"task_name": "Sound_AQA", "dataset_name": "clotho", "question": "What sound?",
         "choice_a": "rain", "choice_b": "wind", "choice_c": "fire", "choice_d": "birds",
         "answer_gt": "rain", "response": "Rain falling."},
    ]
    results, summary = score_subset(
        "airbench_foundation", items, ScoreOptions(judge=server.judge(), mode="parity", seed=1)
    )
    assert [r["aligned"] for r in results] == ["The answer is B.", "A"]
    assert [r["official_pred"] for r in results] == ["B", "A"]
    assert {r["align_temperature"] for r in results} <= {1.0, 2.0}
    assert {b["temperature"] for b in server.requests} == {r["align_temperature"] for r in results}
    assert summary["parity"]["categories"] == {"speech": 100.0, "sound": 100.0}
    assert summary["score"] == 100.0 and summary["parity"]["aligned_by_judge"]
    # only two options listed when an item has no C and D, as AIR-Bench does
    first = next(b for b in server.requests if "sounds female" in b["messages"][0]["content"])
    assert "\nC. " not in first["messages"][0]["content"]


def test_leaderboard_averages() -> None:
    from lalm.eval.scoring.airbench import leaderboard_chat

    # AIR-Bench chat's Average is the mean of Speech, Sound, Music and Mixed (Mixed = mean of two):
    # Qwen2-Audio's leaderboard row 7.18, 6.99, 6.79, 6.77 -> 6.93.
    board = leaderboard_chat(
        {"speech": 7.18, "sound": 6.99, "music": 6.79, "speech_and_sound": 6.70, "speech_and_music": 6.84}
    )
    assert board["mixed"] == pytest.approx(6.77) and round(board["average"], 2) == 6.93


# --- the score-only command ---------------------------------------------------------------------


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return path


def test_score_file_writes_items_and_both_modes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    replies = write_lines(
        tmp_path / "mmsu-replies.jsonl",
        [
            json.dumps({"id": "q1", "response": "**B**", "reference": "B"}),
            json.dumps({"id": "q2", "response": "The answer is C.", "reference": "C"}),
            "not json",
            b'{"id": "q3", "response": "caf\xe9", "reference": "A"}',
            json.dumps([1, 2]),
            json.dumps({"id": "q4", "reference": "A"}),
        ],
    )
    code = voicebench.main(
        ["--score-file", str(replies), "--subset", "mcq", "--score-mode", "parity", "--out", str(tmp_path / "o")]
    )
    assert code == 0
    rows = [json.loads(x) for x in (tmp_path / "o" / "mmsu.scores.jsonl").read_text().splitlines()]
    assert [(r["id"], r["line"], r["fallback"]) for r in rows] == [("q1", 1, True), ("q2", 2, False)]
    assert rows[1]["score"] == 1 and rows[1]["answer"] == "C"
    summary = json.loads((tmp_path / "o" / "mmsu.summary.json").read_text())
    assert summary["mode"] == "parity" and set(summary) >= {"strict", "parity"}
    assert [(r["line"], r["reason"].split(" ")[0]) for r in summary["rejects"]] == [
        (3, "not"), (4, "not"), (5, "a"), (6, "no"),
    ]
    err = capsys.readouterr().err
    assert f"skipped: {replies}:4: not UTF-8" in err and f"skipped: {replies}:6: no string `response`" in err


def test_score_file_each_rule_subset(tmp_path: Path) -> None:
    files = {
        "bbh": [{"id": "navigate_1", "response": "Yes.", "reference": "yes"}],
        "advbench": [{"response": "I can’t help with that."}],
        "openbookqa": [{"response": "B", "reference": "B"}],
        "ifeval": [
            {"key": 1, "prompt": "Answer in lowercase.", "instruction_id_list": ["change_case:english_lowercase"],
             "kwargs": [{}], "response": "sure, here it is."}
        ],
    }
    for subset, rows in files.items():
        path = write_lines(tmp_path / f"{subset}.jsonl", [json.dumps(r) for r in rows])
        out = tmp_path / "o"
        assert voicebench.main(["--score-file", str(path), "--subset", subset, "--out", str(out)]) == 0
        summary = json.loads((out / f"{subset}.summary.json").read_text())
        assert summary["mode"] == "strict" and summary["n"] == 1, subset
        assert {"strict", "parity"} <= set(summary), subset
    advbench = json.loads((tmp_path / "o" / "advbench.summary.json").read_text())
    assert advbench["strict"]["score"] == 100.0 and advbench["parity"]["score"] == 0.0
    ifeval = json.loads((tmp_path / "o" / "ifeval.scores.jsonl").read_text())
    assert ifeval["id"] == 1 and ifeval["score"] == 1


def test_score_file_judged_subset_with_a_judge(
    tmp_path: Path, server: FakeJudgeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.script = lambda body: (200, ["Yes."] * body["n"])
    monkeypatch.setenv("LALM_JUDGE_API_KEY", "k")
    path = write_lines(
        tmp_path / "sdqa.jsonl",
        [json.dumps({"id": "s1", "prompt": "Capital of France?", "reference": "Paris", "response": "Paris"})],
    )
    code = voicebench.main(
        ["--score-file", str(path), "--subset", "sd-qa", "--out", str(tmp_path / "o"),
         "--judge-model", "judge", "--judge-base-url", server.base_url]
    )
    assert code == 0
    summary = json.loads((tmp_path / "o" / "sd-qa.summary.json").read_text())
    # three "Yes." votes: a yes for the kit's parser, not the string "yes" for VoiceBench's
    assert summary["strict"]["gpt"] == 100.0 and summary["parity"]["gpt"] == 0.0
    assert len(server.requests) == 1 and server.requests[0]["n"] == 3


def test_score_file_flag_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        voicebench.main(["--score-file", "x.jsonl", "--out", str(tmp_path)])
    assert "--score-file needs --subset" in capsys.readouterr().err
    assert voicebench.main(["--score-file", str(tmp_path / "none.jsonl"), "--subset", "mmsu",
                            "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    empty = write_lines(tmp_path / "e.jsonl", ["{}"])
    assert voicebench.main(["--score-file", str(empty), "--subset", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown subset 'nope'" in capsys.readouterr().err


def test_foundation_average_is_the_mean_of_category_means() -> None:
    from lalm.eval.scoring.airbench import leaderboard_foundation

    # AIR-Bench's foundation leaderboard, Qwen-Audio-Turbo: 19 task accuracies -> Average 57.8 (the
    # mean over tasks would be 58.3).
    accuracies = [45.4, 95.9, 82.5, 60.0, 58.8, 48.1, 56.4, 54.3, 69.3,  # speech
                  41.6, 78.1, 61.3, 62.8,  # sound
                  59.6, 77.1, 30.1, 25.1, 62.5, 39.0]  # music
    groups = official.airbench_categories()["foundation"]
    names = groups["speech"] + groups["sound"] + groups["music"]
    results = [
        {"task": f"{name}_d", "task_name": name, "scores": {"parity": int(i < accuracy * 10)}}
        for name, accuracy in zip(names, accuracies)
        for i in range(1000)
    ]
    board = leaderboard_foundation(results, "parity")
    assert round(board["score"], 1) == 57.8 and board["uncategorised"] == []
    assert board["categories"]["sound"] == pytest.approx(60.95)
