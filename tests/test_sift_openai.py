"""The openai backend against a real OpenAI-compatible HTTP server on 127.0.0.1 (no mocked client)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import ThreadingHTTPServer

import pytest

from lalm.data_gen import sift
from lalm.jsonl import read_jsonl as read
from tests.helpers import JSONHandler, make_corpus


class ChatServer(ThreadingHTTPServer):
    """Answers `echo: <user message>`; the first request for each prompt fails with a 500 (or every request,
    with `always_fail`); prompts containing 'sentence 3' stop at the length limit."""

    daemon_threads = True

    def __init__(self, always_fail: bool = False):
        super().__init__(("127.0.0.1", 0), ChatHandler)
        self.always_fail = always_fail
        self.lock = threading.Lock()
        self.seen: Counter[str] = Counter()
        self.requests: list[dict] = []
        self.failures = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class ChatHandler(JSONHandler):
    server: ChatServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        user = body["messages"][-1]["content"]
        with self.server.lock:
            self.server.requests.append(body)
            self.server.seen[user] += 1
            fail = self.server.always_fail or self.server.seen[user] == 1
            self.server.failures += fail
        if self.path != "/v1/chat/completions" or fail:
            self.reply(500, {"error": {"message": "try again", "type": "server_error"}})
            return
        truncated = "sentence 3" in user
        self.reply(200, {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"echo: {user}"},
                         "finish_reason": "length" if truncated else "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": len(user.split()) + 1,
                      "total_tokens": len(user.split()) + 6},
        })


@pytest.fixture
def server(request):
    srv = ChatServer(always_fail=getattr(request, "param", False))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def sift_openai(manifest, out, url, *extra):
    return sift.main(["--asr-manifest", str(manifest), "--out", str(out), "--backend", "openai", "--base-url", url,
                      "--llm", "served-model", "--api-key", "test-key", "--concurrency", "3", "--retry-delay",
                      "0.01", "--max-new-tokens", "20", "--timeout", "10", *extra])


def test_answers_retries_and_truncation(tmp_path, server):
    manifest = make_corpus(tmp_path / "corpus", 5)
    out = tmp_path / "out.jsonl"
    assert sift_openai(manifest, out, server.url, "--mode", "sift_sp") == 0
    rows = {r["id"]: r for r in read(out)}
    assert len(rows) == 5
    for row in rows.values():
        assert row["response"] == f"echo: {row['llm_input'][-1]['content']}"
        assert row["truncated"] == ("sentence 3" in row["text"])
        assert row["generation"] == {"backend": "openai", "max_new_tokens": 20, "temperature": 0.0, "top_p": 1.0,
                                     "seed": 0}
    assert rows["utt3"]["truncated"] and not rows["utt0"]["truncated"]
    assert rows["utt0"]["response_tokens"] == len(rows["utt0"]["llm_input"][-1]["content"].split()) + 1
    # Every prompt failed once with a 500 and succeeded on its retry.
    assert server.failures == 5 and len(server.requests) == 10
    sent = server.requests[0]
    assert sent["model"] == "served-model" and sent["max_tokens"] == 20 and sent["temperature"] == 0.0


@pytest.mark.parametrize("server", [True], indirect=True)
def test_a_server_that_keeps_failing_stops_the_run_cleanly(tmp_path, server, capsys):
    manifest = make_corpus(tmp_path / "corpus", 2)
    out = tmp_path / "out.jsonl"
    assert sift_openai(manifest, out, server.url, "--max-retries", "2") == 2
    assert "gave up after 3 attempts" in capsys.readouterr().err
    assert out.read_text() == ""
    assert len(server.requests) == 6  # 2 prompts x (1 try + 2 retries)
