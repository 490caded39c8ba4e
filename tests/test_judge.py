"""The judge client against a real local OpenAI-compatible HTTP server (127.0.0.1, random port)."""

from __future__ import annotations

import json

import pytest

from lalm.eval.scoring import SKIPPED_NO_JUDGE, ScoreOptions, score_subset
from lalm.eval.scoring.judge import (
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_MODEL,
    Judge,
    JudgeConfig,
    JudgeRequest,
    fill_samples,
    make_judge,
)
from lalm.eval.scoring.rubrics import parse_rating
from tests.helpers import FakeJudgeServer, Script

MESSAGES = [{"role": "user", "content": "rate this"}]


def failing_then(replies: list[str], failures: int, status: int = 500) -> Script:
    calls = {"n": 0}

    def script(body: dict) -> tuple[int, list[str]]:
        calls["n"] += 1
        return (status, []) if calls["n"] <= failures else (200, replies[: body.get("n", 1)])

    return script


def test_500_is_retried_then_succeeds(server: FakeJudgeServer) -> None:
    server.script = failing_then(["4", "5", "3"], failures=1)
    sleeps: list[float] = []
    judge = Judge(
        JudgeConfig(model="judge-m", base_url=server.base_url, api_key="k", backoff_s=0.5, timeout_s=5),
        sleep=sleeps.append,
    )
    samples, error = fill_samples(judge, JudgeRequest(MESSAGES, 3, parse_rating))
    assert error is None
    assert [s["value"] for s in samples] == [4.0, 5.0, 3.0]
    assert len(server.requests) == 2 and sleeps == [0.5]
    sent = server.requests[-1]
    assert (sent["model"], sent["n"], sent["temperature"], sent["top_p"]) == ("judge-m", 3, 0.5, 0.95)


def test_backoff_is_exponential_and_bounded(server: FakeJudgeServer) -> None:
    server.script = failing_then([], failures=99)
    sleeps: list[float] = []
    judge = Judge(
        JudgeConfig(
            model="m", base_url=server.base_url, backoff_s=1, max_backoff_s=3, max_attempts=4, timeout_s=5
        ),
        sleep=sleeps.append,
    )
    samples, error = fill_samples(judge, JudgeRequest(MESSAGES, 1, parse_rating))
    assert samples == [] and error is not None and "gave up after 4 attempts" in error
    assert sleeps == [1, 2, 3] and len(server.requests) == 4


def test_client_error_is_not_retried(server: FakeJudgeServer) -> None:
    server.script = failing_then([], failures=99, status=401)
    samples, error = fill_samples(server.judge(), JudgeRequest(MESSAGES, 2, parse_rating))
    assert samples == [] and error is not None and "AuthenticationError" in error
    assert len(server.requests) == 1


def test_server_ignoring_n_is_asked_again(server: FakeJudgeServer) -> None:
    server.script = lambda body: (200, ["2"])
    samples, error = fill_samples(server.judge(), JudgeRequest(MESSAGES, 3, parse_rating))
    assert error is None and [s["value"] for s in samples] == [2.0, 2.0, 2.0]
    assert [r["n"] for r in server.requests] == [3, 2, 1]


def test_request_n_off_asks_one_at_a_time(server: FakeJudgeServer) -> None:
    samples, _ = fill_samples(server.judge(request_n=False), JudgeRequest(MESSAGES, 3, parse_rating))
    assert len(samples) == 3 and [r["n"] for r in server.requests] == [1, 1, 1]


def test_unparsable_reply_is_recorded_not_defaulted(server: FakeJudgeServer) -> None:
    server.script = lambda body: (200, ["5", "What a lovely answer!", "Score: 4"])
    samples, error = fill_samples(server.judge(), JudgeRequest(MESSAGES, 3, parse_rating))
    assert error is None
    assert [s["value"] for s in samples] == [5.0, None, 4.0]
    assert samples[1]["raw"] == "What a lovely answer!" and samples[1]["parse_error"]


OPEN_ITEMS = [
    {"id": "q1", "prompt": "Name a fruit.", "response": "An apple."},
    {"id": "q2", "prompt": "What is 2+2?", "response": "Four."},
]


def test_open_set_scores_and_cache_fills_only_what_is_missing(server: FakeJudgeServer) -> None:
    server.script = lambda body: (200, ["4", "5", "3"][: body["n"]])
    judge = server.judge()
    results, summary = score_subset("alpacaeval_full", OPEN_ITEMS, ScoreOptions(judge=judge))
    assert summary["score"] == pytest.approx(4.0) and summary["score_x20"] == pytest.approx(80.0)
    assert summary["status"] == "ok" and summary["judge"]["temperature"] == 0.5
    assert summary["samples_per_request"] == 3 and summary["n_samples"] == 6
    assert len(server.requests) == 2

    # A rerun with every sample cached asks nothing.
    rerun = [{**item, "judge_samples": r["judge_samples"]} for item, r in zip(OPEN_ITEMS, results)]
    _, again_summary = score_subset("alpacaeval_full", rerun, ScoreOptions(judge=judge))
    assert len(server.requests) == 2 and again_summary["score"] == summary["score"]

    # Drop two samples of the first item: only those two are requested.
    rerun[0] = {**rerun[0], "judge_samples": rerun[0]["judge_samples"][:1]}
    filled, _ = score_subset("alpacaeval_full", rerun, ScoreOptions(judge=judge))
    assert len(server.requests) == 3 and server.requests[-1]["n"] == 2
    assert len(filled[0]["judge_samples"]) == 3

    # A changed response invalidates its cached samples (the key covers the question asked).
    changed = [{**rerun[1], "response": "Five."}]
    score_subset("alpacaeval_full", changed, ScoreOptions(judge=judge))
    assert len(server.requests) == 4 and server.requests[-1]["n"] == 3


def test_outage_leaves_error_and_partial_status_then_rerun_fills(server: FakeJudgeServer) -> None:
    server.script = failing_then([], failures=99)
    judge = server.judge(max_attempts=2)
    results, summary = score_subset("commoneval", OPEN_ITEMS, ScoreOptions(judge=judge))
    assert summary["score"] is None and summary["status"].startswith("incomplete: 2 item(s)")
    assert all(r["judge_error"] and r["score"] is None for r in results)
    server.script = lambda body: (200, ["5"] * body["n"])
    rerun = [{**item, "judge_samples": r["judge_samples"]} for item, r in zip(OPEN_ITEMS, results)]
    _, summary = score_subset("commoneval", rerun, ScoreOptions(judge=judge))
    assert summary["score"] == 5.0 and summary["status"] == "ok"


def test_concurrency_is_bounded(server: FakeJudgeServer) -> None:
    server.delay_s = 0.05
    items = [{"prompt": f"q{i}", "response": f"a{i}"} for i in range(6)]
    _, summary = score_subset("wildvoice", items, ScoreOptions(judge=server.judge(max_workers=2)))
    assert summary["n_scored"] == 6 and server.max_in_flight == 2


def test_sdqa_majority_vote_and_panda(server: FakeJudgeServer) -> None:
    def script(body: dict) -> tuple[int, list[str]]:
        candidate = body["messages"][1]["content"].split("### Candidate answer")[1]
        return 200, ["No", "No", "Yes"] if "Lyon" in candidate else ["Yes", "yes.", "No"]

    server.script = script
    items = [
        {"prompt": "Capital of France?", "reference": "Paris", "response": "It is Paris."},
        {"prompt": "Capital of France?", "reference": "Paris", "response": "Lyon, I think."},
    ]
    results, summary = score_subset("sd-qa", items, ScoreOptions(judge=server.judge()))
    assert [r["gpt"] for r in results] == [True, False] and [r["panda"] for r in results] == [True, False]
    assert (summary["gpt"], summary["panda"], summary["score"]) == (50.0, 50.0, 50.0)
    assert server.requests[0]["messages"][0]["role"] == "system"


def test_airbench_chat_averages_both_orders(server: FakeJudgeServer) -> None:
    def script(body: dict) -> tuple[int, list[str]]:
        content = body["messages"][0]["content"]
        reference_first = content.index("A dog barks.") < content.index("A cat.")
        return 200, ["9 6" if reference_first else "5 8"]

    server.script = script
    items = [
        {
            "meta_info": "barking",
            "question": "What animal?",
            "answer_gt": "A dog barks.",
            "response": "A cat.",
            "task_name": "sound_QA",
        }
    ]
    results, summary = score_subset("airbench_chat", items, ScoreOptions(judge=server.judge()))
    assert results[0]["score"] == pytest.approx(5.5) and results[0]["reference_score"] == pytest.approx(8.5)
    assert summary["strict"]["categories"]["sound"]["n_scored"] == 1
    # Parity asks both orders again at AIR-Bench's temperatures (1.0, or 2.0 for a seeded half).
    assert len(server.requests) == 4
    assert sorted(r["temperature"] for r in server.requests)[2:] in ([1.0, 1.0], [1.0, 2.0], [2.0, 2.0])
    assert summary["parity"]["categories"]["sound"]["score"] == pytest.approx(5.5)
    assert summary["parity"]["leaderboard"]["sound"] == pytest.approx(5.5)
    assert summary["parity"]["score"] is None  # no speech, music or mixed items: no average


def test_make_judge_reads_the_environment(monkeypatch: pytest.MonkeyPatch, server: FakeJudgeServer) -> None:
    monkeypatch.delenv(ENV_MODEL, raising=False)
    assert make_judge() is None
    monkeypatch.setenv(ENV_MODEL, "env-model")
    monkeypatch.setenv(ENV_BASE_URL, server.base_url)
    monkeypatch.setenv(ENV_API_KEY, "secret")
    judge = make_judge(temperature=0.0)
    assert judge is not None and judge.config.model == "env-model" and judge.config.temperature == 0.0
    assert "secret" not in json.dumps(judge.config.record()) and "secret" not in repr(judge.config)
    assert make_judge(model="arg-model").config.model == "arg-model"  # type: ignore[union-attr]


def test_no_judge_means_skipped_not_zero() -> None:
    for name in ("alpacaeval_full", "commoneval", "wildvoice", "airbench_chat"):
        results, summary = score_subset(name, OPEN_ITEMS, ScoreOptions(judge=None))
        assert summary["score"] is None and summary["status"] == SKIPPED_NO_JUDGE
        assert all(r["status"] == SKIPPED_NO_JUDGE for r in results)
