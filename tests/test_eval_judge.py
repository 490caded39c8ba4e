"""Judge-scored open sets through the harness, with the model and the judge behind a real local HTTP
server: ratings and raw replies are kept per item, an unparsable reply is recorded, a judge error
stays on its item, and a rerun asks the judge only for what is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lalm.eval import runner, voicebench
from lalm.jsonl import read_jsonl_skip_torn_tail
from tests.helpers import FakeJudgeServer, write_manifest

ROWS = [{"id": f"o{i}", "freq": 300 + 100 * i, "text": f"Tell me about topic {i}."} for i in range(3)]


def model_and_judge(judge_down_for: str | None):
    def script(body: dict) -> tuple[int, list[str]]:
        if body["model"] == "peer":
            return 200, ["Here is a short answer."]
        asked = body["messages"][-1]["content"]
        if judge_down_for and judge_down_for in asked:
            return 401, []  # not retryable: fails at once
        if "topic 1" in asked:
            return 200, ["What a lovely answer!"] * body["n"]
        return 200, ["4", "5", "3"][: body["n"]]

    return script


def test_open_set_judged_cached_and_refilled(
    tmp_path: Path,
    server: FakeJudgeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("LALM_JUDGE_MODEL", "LALM_JUDGE_BASE_URL", "LALM_JUDGE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(runner, "JUDGE_CHUNK", 2)  # several saved chunks
    server.script = model_and_judge(judge_down_for="topic 2")
    out = tmp_path / "run"
    argv = [
        "--endpoint",
        server.base_url,
        "--endpoint-model",
        "peer",
        "--mode",
        "audio",
        "--out",
        str(out),
        "--manifest",
        str(write_manifest(tmp_path / "data", ROWS)),
        "--subset",
        "commoneval",
        "--judge-model",
        "judge-m",
        "--judge-base-url",
        server.base_url,
        "--no-progress",
    ]
    assert voicebench.main(argv) == 0

    rows = {r["id"]: r for r in read_jsonl_skip_torn_tail(out / "commoneval.audio.jsonl")}
    assert rows["o0"]["result"]["ratings"] == [4.0, 5.0, 3.0] and rows["o0"]["result"]["score"] == 4.0
    assert [s["raw"] for s in rows["o0"]["judge_samples"]] == ["4", "5", "3"]
    unparsable = rows["o1"]["judge_samples"]
    assert [s["value"] for s in unparsable] == [None] * 3 and unparsable[0]["raw"] == "What a lovely answer!"
    assert rows["o1"]["result"]["score"] is None
    assert "401" in rows["o2"]["judge_error"] and rows["o2"]["judge_samples"] == []
    result = json.loads((out / "summary.json").read_text())["sets"]["commoneval"]["modes"]["audio"]
    assert result["score"] == 4.0 and result["score_x20"] == 80.0
    assert result["n_unparsable_samples"] == 3 and result["status"].startswith("incomplete: 1 item")
    assert result["judge"]["model"] == "judge-m" and result["judge"]["temperature"] == 0.5
    assert result["scoring"]["judge_samples"] == 3
    judge_calls = [b for b in server.requests if b["model"] == "judge-m"]
    assert len(judge_calls) == 3  # one request of n=3 per item; the failed one is not asked twice

    server.requests.clear()
    server.script = model_and_judge(judge_down_for=None)
    assert voicebench.main(argv) == 0
    assert len(server.requests) == 1 and "topic 2" in server.requests[0]["messages"][-1]["content"]
    result = json.loads((out / "summary.json").read_text())["sets"]["commoneval"]["modes"]["audio"]
    assert result["status"] == "ok" and result["score"] == 4.0
    rows = {r["id"]: r for r in read_jsonl_skip_torn_tail(out / "commoneval.audio.jsonl")}
    assert rows["o2"]["judge_error"] is None
