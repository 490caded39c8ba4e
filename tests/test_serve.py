"""The OpenAI-compatible server over real HTTP on 127.0.0.1, with a tiny random model.

A spy on `generate_batch` records the clips of every row of every call, which shows what audio
reached the model (after decoding and resampling) and which requests shared a batch.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import types
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import openai
import pytest
import soundfile as sf
import torch
from conftest import hold_until_cancelled

from lalm import LALM
from lalm.audio import MAX_CLIP_SECONDS
from lalm.generation import Sampling
from lalm.serve import DEFAULT_BACKLOG, App, Server
from lalm.serve_api import APIError, ChatRequest, Completion, Limits
from lalm.serve_batch import BatchWorker, HFBackend, Job

ROOT = Path(__file__).resolve().parents[1]
KEY = "test-key"
LIMITS = Limits(max_audio_bytes=200_000, max_audio_seconds=3.0, max_tokens=16, max_messages=8,
                max_request_bytes=2_000_000, max_text_chars=3000, max_prompt_tokens=2000)


def wav_base64(seconds: float, rate: int = 16000, fmt: str = "WAV") -> str:
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), rate, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode()


def audio_part(data: str, fmt: str = "wav") -> dict:
    return {"type": "input_audio", "input_audio": {"data": data, "format": fmt}}


def user(*parts: dict | str) -> list[dict]:
    content = [{"type": "text", "text": p} if isinstance(p, str) else p for p in parts]
    return [{"role": "user", "content": content}]


@pytest.fixture(scope="module")
def server(tiny_config):
    model = LALM(tiny_config.model)
    calls: list[list[list[int]]] = []  # per generate_batch call: per row, the clip lengths at 16 kHz
    generate_batch = model.generate_batch

    def spy(conversations, audio, **kwargs):
        calls.append([[len(clip) for clip in row] for row in audio])
        return generate_batch(conversations, audio, **kwargs)

    model.generate_batch = spy
    backend = HFBackend(model)
    batches: list[list[ChatRequest]] = []  # per batch the worker ran: its requests
    run = backend.run

    def run_spy(jobs):
        batches.append([job.request for job in jobs])
        return run(jobs)

    backend.run = run_spy
    app = App(BatchWorker(backend, max_batch=4, window=0.2).start(), "tiny", LIMITS, api_key=KEY)
    server = Server(("127.0.0.1", 0), app).start()
    server.calls, server.batches, server.model = calls, batches, model
    yield server
    server.stop()


def post(server, body: dict | bytes, key: str | None = KEY, path: str = "/v1/chat/completions"):
    """(status, parsed JSON or raw text) of a POST; 4xx/5xx answers are returned, not raised."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    request = urllib.request.Request(server.url + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw = response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read().decode()
    return status, (raw if raw.startswith("data:") else json.loads(raw))


def get(server, path: str, key: str | None = KEY):
    request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


def sse_chunks(text: str) -> list[dict | str]:
    events = [e for e in text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events), events
    return [e[6:] if e == "data: [DONE]" else json.loads(e[6:]) for e in events]


def test_text_request(server):
    status, body = post(server, {"model": "tiny", "messages": user("Hello!"), "max_tokens": 5})
    assert status == 200, body
    choice = body["choices"][0]
    assert body["object"] == "chat.completion" and body["model"] == "tiny"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["role"] == "assistant"
    assert choice["message"]["refusal"] is None  # OpenAI's schema has it
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and 1 <= usage["completion_tokens"] <= 5
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert choice["finish_reason"] == ("length" if usage["completion_tokens"] == 5 else "stop")
    # plain string content works too
    status, body = post(server, {"messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 5})
    assert status == 200 and body["usage"]["prompt_tokens"] == usage["prompt_tokens"]


def test_audio_request(server):
    text_only = post(server, {"messages": user("What is said?"), "max_tokens": 3})[1]["usage"]["prompt_tokens"]
    status, body = post(server, {"messages": user(audio_part(wav_base64(1.5, rate=8000)), "What is said?"),
                                 "max_tokens": 3})
    assert status == 200, body
    assert server.calls[-1] == [[24000]]  # 1.5 s at 8 kHz reached the model as 1.5 s at 16 kHz
    assert body["usage"]["prompt_tokens"] > text_only + 10  # the audio positions count as prompt tokens
    flac = {"type": "audio_url", "audio_url": {"url": "data:audio/flac;base64," + wav_base64(1.0, fmt="FLAC")}}
    assert post(server, {"messages": user(flac), "max_tokens": 2})[0] == 200  # vLLM's audio_url part
    assert server.calls[-1] == [[16000]]


def test_streamed_request_matches_the_plain_answer(server):
    request = {"messages": user(audio_part(wav_base64(1.0)), "Describe it."), "max_tokens": 8}
    plain = post(server, request)[1]
    status, raw = post(server, {**request, "stream": True, "stream_options": {"include_usage": True}})
    assert status == 200
    chunks = sse_chunks(raw)
    assert chunks[-1] == "[DONE]"
    *deltas, last, usage_chunk, _ = chunks
    assert deltas[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == last["id"] for c in deltas)
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in deltas)
    assert streamed == plain["choices"][0]["message"]["content"]
    assert last["choices"][0]["finish_reason"] == plain["choices"][0]["finish_reason"]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"] == plain["usage"]


def test_openai_client(server):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY)
    assert [m.id for m in client.models.list()] == ["tiny"]
    messages = user(audio_part(wav_base64(0.5)), "What is said?")
    answer = client.chat.completions.create(model="tiny", messages=messages, max_tokens=6)
    assert answer.choices[0].finish_reason in ("stop", "length") and answer.usage.completion_tokens <= 6
    stream = client.chat.completions.create(model="tiny", messages=messages, max_tokens=6, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == answer.choices[0].message.content
    with pytest.raises(openai.BadRequestError, match="over this server's limit of 16"):
        client.chat.completions.create(model="tiny", messages=messages, max_tokens=100)


BAD_REQUESTS = {
    "bad JSON": (b'{"messages": [', 400, "invalid_json", "not valid JSON"),
    "not an object": ([1, 2], 400, None, "must be a JSON object"),
    "no messages": ({"messages": []}, 400, None, "non-empty list"),
    "too many messages": ({"messages": user("hi") * 9}, 400, "too_many_messages", "limit of 8"),
    "unknown role": ({"messages": [{"role": "tool", "content": "x"}]}, 400, None, "is not one of"),
    "image part": ({"messages": user({"type": "image_url", "image_url": {"url": "x"}})}, 400, None, "not supported"),
    "oversize audio": ({"messages": user(audio_part(wav_base64(2.5, rate=48000)))}, 400, "audio_too_large",
                       "over this server's limit of 200,000 bytes"),
    "too long audio": ({"messages": user(audio_part(wav_base64(4.0, rate=8000)))}, 400, "audio_too_long",
                       "4.0 s long, over this server's limit of 3 s"),
    "bad base64": ({"messages": user(audio_part("not base64!"))}, 400, "invalid_audio", "not valid base64"),
    "not audio": ({"messages": user(audio_part(base64.b64encode(b"hello" * 100).decode()))}, 400,
                  "invalid_audio", "could not be decoded"),
    "bad format": ({"messages": user(audio_part(wav_base64(0.5), fmt="aac"))}, 400, None, "format 'aac'"),
    "remote audio_url": ({"messages": user({"type": "audio_url", "audio_url": {"url": "http://x/a.wav"}})}, 400,
                         None, "data:audio"),
    "max_tokens too large": ({"messages": user("hi"), "max_tokens": 17}, 400, "max_tokens_too_large", "limit of 16"),
    "max_tokens not int": ({"messages": user("hi"), "max_tokens": "5"}, 400, None, "positive integer"),
    "temperature": ({"messages": user("hi"), "temperature": 3}, 400, None, "'temperature' must be"),
    "n": ({"messages": user("hi"), "n": 2}, 400, "unsupported_parameter", "only n=1"),
    # bad input of any depth or character is the request's own 400, never a 500
    "deeply nested JSON": (b"[" * 100_000, 400, "invalid_json", "nests arrays or objects too deeply"),
    "lone surrogate": ({"messages": user("a\ud800b")}, 400, "invalid_text", "not valid Unicode"),
    "audio sentinel in text": ({"messages": [{"role": "user", "content": "x\ue000"}]}, 400, "invalid_text",
                               "U+E000"),
    # text is bounded before it is tokenised in the model thread
    "too much text": ({"messages": user("a" * 2000, "b" * 1001)}, 400, "text_too_long",
                      "3,001 characters of text, over this server's limit of 3,000 (--max-text-chars)"),
    "too many prompt tokens": ({"messages": user("hello " * 450)}, 400, "prompt_too_long",
                               "over this server's limit of 2,000 (--max-prompt-tokens)"),
    # fields that are not implemented are refused by name, not ignored
    "logprobs": ({"messages": user("hi"), "logprobs": True}, 400, "unsupported_parameter", "'logprobs' is not"),
    "top_logprobs": ({"messages": user("hi"), "top_logprobs": 3}, 400, "unsupported_parameter", "'top_logprobs'"),
    "tools": ({"messages": user("hi"), "tools": [{"type": "function", "function": {"name": "f"}}]}, 400,
              "unsupported_parameter", "'tools' is not"),
    "json mode": ({"messages": user("hi"), "response_format": {"type": "json_object"}}, 400,
                  "unsupported_parameter", "'response_format'"),
    "penalty": ({"messages": user("hi"), "frequency_penalty": 0.5}, 400, "unsupported_parameter",
                "'frequency_penalty'"),
    "unknown field": ({"messages": user("hi"), "top_k": 5}, 400, "unsupported_parameter",
                      "unrecognized request field 'top_k'"),
    "five stops": ({"messages": user("hi"), "stop": list("abcde")}, 400, None, "at most 4"),
    "empty stop": ({"messages": user("hi"), "stop": [""]}, 400, None, "non-empty string"),
    "seed": ({"messages": user("hi"), "seed": True}, 400, None, "'seed' must be"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_rejects_bad_requests_with_clear_errors(server, case):
    body, status, code, message = BAD_REQUESTS[case]
    calls = len(server.calls)
    got, answer = post(server, body)
    assert got == status, answer
    assert set(answer["error"]) == {"message", "type", "param", "code"}
    assert answer["error"]["type"] == "invalid_request_error" and answer["error"]["code"] == code
    assert message in answer["error"]["message"]
    assert answer["error"]["param"] == {"logprobs": "logprobs", "unknown field": "top_k",
                                        "lone surrogate": "messages[0].content[0].text"}.get(case, answer["error"]["param"])
    assert len(server.calls) == calls  # rejected before reaching the model,
    assert not any(r.conversation == body.get("messages") for b in server.batches for r in b
                   if isinstance(body, dict))  # and before reaching the worker


def test_fields_at_their_defaults_and_bookkeeping_fields_are_accepted(server):
    status, body = post(server, {"messages": user("hi"), "max_tokens": 2, "logprobs": False, "tools": [],
                                 "frequency_penalty": 0.0, "response_format": {"type": "text"}, "n": 1,
                                 "user": "u1", "metadata": {"k": "v"}, "seed": 3, "model": "whatever"})
    assert status == 200, body
    assert body["choices"][0]["message"]["refusal"] is None and body["choices"][0]["logprobs"] is None


def test_one_bad_request_fails_alone_not_its_batch(server):
    """A lone surrogate sent with three good requests: a 400 for it, answers for the others."""
    start = threading.Barrier(4)
    results = {}

    def send(i, text):
        start.wait()
        results[i] = post(server, {"messages": user(text), "max_tokens": 3})

    threads = [threading.Thread(target=send, args=(i, "\ud800" if i == 0 else f"hello {i}")) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i][0] for i in range(4)] == [400, 200, 200, 200], results
    assert results[0][1]["error"]["code"] == "invalid_text"


def test_a_request_that_cannot_be_encoded_is_refused_at_submit(tiny_model):
    """Past the HTTP checks (a ChatRequest made directly), the prompt is still encoded and measured in
    the caller's thread: the tokenizer's failure is that request's 400, and its batch never forms."""
    backend = RecordingBackend(tiny_model)
    worker = BatchWorker(backend, max_batch=4, window=0.05)
    with pytest.raises(APIError, match="cannot be rendered") as refused:
        worker.submit(ChatRequest(user("\ud800"), [], Sampling(3)))
    assert refused.value.status == 400
    jobs = [worker.submit(ChatRequest(user(f"good {i}"), [], Sampling(3))) for i in range(3)]
    worker.start()
    assert all(job.result().text == "ok" for job in jobs)
    worker.stop()
    assert [len(batch) for batch in backend.batches] == [3]


def test_a_row_that_breaks_its_batch_fails_alone():
    """generate raising for a batch (the row at fault unknown) retries its rows one by one."""
    backend = RecordingBackend(poison="poison")
    worker = BatchWorker(backend, max_batch=4, window=0.05)
    texts = ["a", "poison", "b", "c"]
    jobs = [worker.submit(ChatRequest(user(t), [], Sampling(3))) for t in texts]  # queued before the worker starts
    worker.start()
    with pytest.raises(APIError, match="generation failed") as failed:
        jobs[1].result()
    assert failed.value.status == 500
    assert [job.result().text for i, job in enumerate(jobs) if i != 1] == ["ok"] * 3
    worker.stop()
    assert [len(batch) for batch in backend.batches] == [4, 1, 1, 1, 1]


def test_a_job_cancelled_while_queued_never_runs():
    backend = RecordingBackend()
    worker = BatchWorker(backend, max_batch=4, window=0.05)
    gone, kept = (worker.submit(ChatRequest(user(t), [], Sampling(3))) for t in ("gone", "kept"))
    gone.cancelled.set()
    worker.start()
    assert kept.result().text == "ok"
    worker.stop()
    assert backend.batches == [[kept]]


def test_stop_sequences_end_the_answer_before_them(server):
    base = {"messages": user("Tell me."), "max_tokens": 16}
    plain = post(server, base)[1]
    text = plain["choices"][0]["message"]["content"]
    # the random model's answer is deterministic: stop at its first ASCII letter or digit after the start
    at = next(i for i, ch in enumerate(text) if i > 0 and ch.isascii() and ch.isalnum())
    stop = text[at]
    expected = text[: text.index(stop)]
    answer = post(server, {**base, "stop": stop})[1]
    assert answer["choices"][0]["message"]["content"] == expected
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"]["completion_tokens"] < plain["usage"]["completion_tokens"]
    # a list: the earliest of them ends it; one that never occurs changes nothing
    listed = post(server, {**base, "stop": ["never-said", stop]})[1]
    assert listed["choices"][0]["message"]["content"] == expected
    # streamed: the same text, and no delta ever shows the stop sequence or anything after it
    status, raw = post(server, {**base, "stop": [stop], "stream": True})
    assert status == 200
    chunks = [c for c in sse_chunks(raw) if c != "[DONE]"]
    deltas = [c["choices"][0]["delta"].get("content", "") for c in chunks]
    assert "".join(deltas) == expected and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}


def test_a_seed_makes_sampling_repeatable(server):
    body = {"messages": user("Say something."), "max_tokens": 12, "temperature": 1.0}
    first, second = (post(server, {**body, "seed": 7})[1]["choices"][0]["message"]["content"] for _ in range(2))
    assert first == second
    others = {post(server, {**body, "seed": seed})[1]["choices"][0]["message"]["content"] for seed in (1, 2, 3)}
    assert len(others | {first}) > 1  # the seed is what fixed it


def test_http_level_errors_are_json_too(server):
    """Errors http.server raises itself (unknown method, too many headers, long URI) and a body
    without a usable Content-Length: OpenAI's JSON error shape, never an HTML page, and the
    connection closes (an unread body must not be parsed as the next request)."""
    cases = {
        b"PUT /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n": 501,
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(101)) + b"\r\n": 431,
        b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n": 414,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode()
        + b"\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n": 411,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode()
        + b"\r\nContent-Length: abc\r\n\r\n": 411,
    }
    for raw, status in cases.items():
        with socket.create_connection(server.server_address[:2], timeout=30) as sock:
            sock.sendall(raw)
            reply = b""
            while chunk := sock.recv(65536):  # the server closes the connection after the error
                reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 %d " % status), reply[:200]
        assert b"content-type: application/json" in head.lower() and b"connection: close" in head.lower()
        assert json.loads(body)["error"]["message"], body


def listen_backlog(server: Server) -> int:
    """The listening socket's accept-queue size as the kernel holds it: Linux's TCP_INFO reports it
    in tcpi_sacked for a socket in the LISTEN state."""
    info = server.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("8B6I", info)[13]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the backlog through Linux's TCP_INFO")
def test_listen_backlog_takes_a_burst():
    servers = [Server(("127.0.0.1", 0), App(BatchWorker(RecordingBackend()).start(), "tiny"), *backlog)
               for backlog in ((), (7,))]
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            cap = int(f.read())
        assert [listen_backlog(s) for s in servers] == [min(DEFAULT_BACKLOG, cap), 7]
        assert DEFAULT_BACKLOG >= 128
    finally:
        for s in servers:
            s.server_close()
            s.app.worker.stop()


def test_a_plain_request_whose_client_leaves_stops_generating(tiny_config):
    """As with a stream, a non-streamed client that closes its connection cancels its row: the
    model below holds its first token until it sees the cancellation (or gives up after 30 s)."""
    model = LALM(tiny_config.model)
    started, finished, seen = threading.Event(), threading.Event(), {}
    generate_batch = model.generate_batch

    def gated(conversations, audio, streamer, **kwargs):
        hold_until_cancelled(streamer, started, seen)
        try:
            return generate_batch(conversations, audio, streamer=streamer, **kwargs)
        finally:
            seen["tokens"] = len(streamer.rows[0].token_ids)
            finished.set()

    model.generate_batch = gated
    limits = Limits(max_tokens=1000)
    server = Server(("127.0.0.1", 0), App(BatchWorker(HFBackend(model)).start(), "tiny", limits)).start()
    try:
        body = json.dumps({"messages": user("Talk for a long time."), "max_tokens": 1000}).encode()
        sock = socket.create_connection(server.server_address[:2], timeout=30)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        assert started.wait(60)
        sock.close()  # the client gives up before the answer
        assert finished.wait(60)
        assert seen["cancelled"] and seen["tokens"] < 1000
    finally:
        server.stop()


def test_help_shows_every_default():
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "lalm.serve", "--help"], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120, check=True)
    text = " ".join(proc.stdout.split())
    for flag, default in [("--port PORT", "8000"), ("--backlog BACKLOG", "128"), ("--max-messages MAX_MESSAGES", "64"),
                          ("--max-request-mb MAX_REQUEST_MB", "64.0"), ("--max-text-chars MAX_TEXT_CHARS", "100000"),
                          ("--max-prompt-tokens MAX_PROMPT_TOKENS", "32768"),
                          ("--max-audio-seconds MAX_AUDIO_SECONDS", str(MAX_CLIP_SECONDS)),
                          ("--vllm-tensor-parallel-size VLLM_TENSOR_PARALLEL_SIZE", "1"),
                          ("--vllm-gpu-memory-utilization VLLM_GPU_MEMORY_UTILIZATION", "0.85")]:
        assert re.search(re.escape(flag) + r" [^-]*\(default: " + re.escape(default) + r"\)", text), flag
    assert re.search(r"--vllm-max-model-len VLLM_MAX_MODEL_LEN [^-]*\(default: the LLM's max_position_embeddings\)",
                     text)


def test_the_command_line_sets_the_limits_and_the_backlog():
    # A suite started in the background (`cmd &` in a script, nohup) ignores SIGINT and a child would
    # inherit that; a Python handler here is reset to the default in the child, which then takes the
    # Ctrl-C this test sends as a terminal would.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "lalm.serve", "--config", "configs/tiny.yaml", "--port", "0",
                                 "--backlog", "9", "--max-text-chars", "10", "--max-audio-seconds", "1.5"],
                                cwd=ROOT, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONFAULTHANDLER": "1"})  # SIGABRT then prints every thread
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        for line in proc.stderr:  # the log names the address once the socket listens
            if match := re.search(r"serving .* at (http://[\d.]+:(\d+))", line):
                break
        else:
            pytest.fail("the server exited before listening")
        url, port = match.groups()
        request = urllib.request.Request(url + "/v1/chat/completions", data=json.dumps(
            {"messages": user("eleven char")}).encode(), headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        error = json.loads(refused.value.read())["error"]
        assert refused.value.code == 400 and "limit of 10 (--max-text-chars)" in error["message"]
        with urllib.request.urlopen(url + "/health", timeout=60) as health:
            assert json.loads(health.read())["max_audio_seconds"] == 1.5
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=False)
        if listening.returncode == 0 and listening.stdout.split():
            assert listening.stdout.split()[2] == "9"  # Send-Q of a listening socket: its backlog
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            pytest.fail(f"the server was still running 60 s after SIGINT; its threads:\n{proc.stderr.read()[-8000:]}")


def test_sigterm_finishes_the_request_in_flight_then_exits_0():
    """docker stop / systemctl stop send SIGTERM: the request the server holds is answered in full,
    then the server exits with status 0. The request is held in flight without any timing: its
    headers ask `Expect: 100-continue`, and its body is sent only once the server has logged SIGTERM."""
    proc = subprocess.Popen([sys.executable, "-m", "lalm.serve", "--config", "configs/tiny.yaml", "--port", "0"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:
            if match := re.search(r"serving .* at http://([\d.]+):(\d+)", line):
                break
        else:
            pytest.fail("the server exited before listening")
        body = json.dumps({"messages": user("hello"), "max_tokens": 4}).encode()
        client = socket.create_connection((match[1], int(match[2])), timeout=120)
        client.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                       b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        assert client.recv(4096).startswith(b"HTTP/1.1 100")  # the server has begun this request
        proc.send_signal(signal.SIGTERM)
        log = []
        for line in proc.stderr:
            log.append(line)
            if "SIGTERM" in line:
                break
        assert "finishing 1 request(s) in flight" in log[-1], log
        client.sendall(body)
        answer = b""
        while chunk := client.recv(65536):  # the server closes the connection as it exits
            answer += chunk
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), answer
        assert json.loads(payload)["choices"][0]["finish_reason"] in ("stop", "length")
        assert proc.wait(timeout=120) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_client_gone_mid_answer_is_one_log_line_not_a_traceback(server, capsys, caplog):
    caplog.set_level("INFO", "lalm.serve")
    try:
        raise BrokenPipeError(32, "Broken pipe")  # as a write to a closed socket raises it
    except BrokenPipeError:
        server.handle_error(None, ("203.0.113.7", 5000))
    assert "Traceback" not in capsys.readouterr().err
    assert "203.0.113.7 went away: BrokenPipeError" in caplog.text


def test_rejects_a_too_large_body_before_reading_it(server):
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    connection.putrequest("POST", "/v1/chat/completions")
    connection.putheader("Authorization", f"Bearer {KEY}")
    connection.putheader("Content-Length", str(LIMITS.max_request_bytes + 1))
    connection.endheaders()  # no body sent: the server must answer from the headers alone
    response = connection.getresponse()
    assert response.status == 413 and response.getheader("Connection") == "close"
    assert json.loads(response.read())["error"]["code"] == "request_too_large"
    connection.close()


def test_bad_audio_error_names_the_field(server):
    messages = [{"role": "system", "content": "Be brief."}, *user("first", audio_part("%%%"))]
    error = post(server, {"messages": messages})[1]["error"]
    assert error["param"] == "messages[1].content[1].input_audio"


def test_api_key(server):
    for key in (None, "wrong"):
        status, body = post(server, {"messages": user("hi")}, key=key)
        assert status == 401 and body["error"]["code"] == "invalid_api_key"
        assert get(server, "/v1/models", key=key)[0] == 401
    status, _, body = get(server, "/health", key=None)
    assert status == 200 and json.loads(body) == {"status": "ok", "model": "tiny", "auth_required": True, "max_tokens": 16,
                                           "max_audio_seconds": 3.0}


def test_routes_and_page(server):
    status, content_type, body = get(server, "/", key=None)
    assert status == 200 and content_type.startswith("text/html") and "app.js" in body
    assert get(server, "/app.js", key=None)[1].startswith("text/javascript")
    status, _, body = get(server, "/nope")
    assert status == 404 and "no route /nope" in json.loads(body)["error"]["message"]
    status, body = post(server, {}, path="/health")
    assert status == 405 and "takes GET" in body["error"]["message"]


def test_concurrent_requests_share_one_generate_batch(server):
    """A streamed and a plain request with different max_tokens arrive together: one call, two rows."""
    start = threading.Barrier(2)
    results = {}

    def send(name, body):
        start.wait()
        results[name] = post(server, body)

    before = len(server.calls)
    threads = [
        threading.Thread(target=send, args=("plain", {"messages": user(audio_part(wav_base64(1.0)), "a"),
                                                      "max_tokens": 4})),
        threading.Thread(target=send, args=("stream", {"messages": user("b"), "max_tokens": 7, "stream": True})),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert server.calls[before:] == [[[16000], []]] or server.calls[before:] == [[[], [16000]]]
    assert results["plain"][0] == results["stream"][0] == 200
    assert results["plain"][1]["usage"]["completion_tokens"] <= 4
    assert sse_chunks(results["stream"][1])[-1] == "[DONE]"


class RecordingBackend:
    """Answers "ok"; measures prompts with `model` when given one; a batch holding `poison` raises."""

    def __init__(self, model=None, poison: str | None = None):
        self.model, self.poison = model, poison
        self.batches: list[list[Job]] = []

    def admit(self, request: ChatRequest, max_prompt_tokens: int | None = None) -> int:
        from lalm.serve_batch import admit

        return admit(self.model, request, None, max_prompt_tokens) if self.model is not None else 1

    def run(self, jobs: list[Job]) -> None:
        self.batches.append(jobs)
        if self.poison is not None and any(self.poison in json.dumps(j.request.conversation) for j in jobs):
            raise RuntimeError("a row broke generation")
        for job in jobs:
            job.finish(Completion("ok", 1, 1, "stop"))


def test_worker_batches_only_equal_sampling_settings():
    backend = RecordingBackend()
    worker = BatchWorker(backend, max_batch=2, window=0.05)
    settings = [Sampling(4), Sampling(4, temperature=0.7), Sampling(9), Sampling(4)]
    jobs = [worker.submit(ChatRequest(user("x"), [], s)) for s in settings]  # queued before the worker starts
    worker.start()
    assert all(job.result().text == "ok" for job in jobs)
    worker.stop()
    # greedy rows batch whatever their max_tokens, up to max_batch; the sampled one waits its turn
    assert [[jobs.index(j) for j in batch] for batch in backend.batches] == [[0, 2], [1], [3]]


def test_vllm_backend_sends_each_rows_unpadded_spliced_embeddings(tiny_model, monkeypatch):
    """vLLM itself is not installed here: a stub records what the backend hands it."""
    seen = {}

    class StubLLM:
        def __init__(self, **kwargs):
            seen["engine"] = kwargs

        def generate(self, prompts, params, use_tqdm):
            seen["prompts"], seen["params"] = prompts, params
            ids = [[40, 41, tiny_model.tokenizer.eos_token_id], [42, 43, 44]]
            reasons = ["stop", "length"]
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(token_ids=i, finish_reason=r)])
                    for i, r in zip(ids, reasons)]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=StubLLM, SamplingParams=dict))
    monkeypatch.setattr(tiny_model.config.llm, "random_config", None)
    monkeypatch.setattr(tiny_model.config.llm, "path", "/models/llm")
    from lalm.vllm_backend import VLLMBackend

    backend = VLLMBackend(tiny_model)
    clip = np.random.default_rng(0).normal(0, 0.1, 20000).astype(np.float32)
    stop = tiny_model.tokenizer.decode([43])  # the second row's answer ends before it
    requests = [ChatRequest(user("short"), [], Sampling(3)),
                ChatRequest(user({"type": "audio"}, "a longer prompt"), [clip], Sampling(3, 0.7, 0.9, seed=5),
                            stream=True, stop=(stop,))]
    jobs = [Job(r, backend.admit(r)) for r in requests]
    backend.run(jobs)

    assert seen["engine"]["enable_prompt_embeds"] is True and seen["engine"]["model"] == "/models/llm"
    assert seen["params"] == [{"max_tokens": 3, "temperature": 0.0, "top_p": 1.0, "seed": None, "stop": None},
                              {"max_tokens": 3, "temperature": 0.7, "top_p": 0.9, "seed": 5, "stop": [stop]}]
    with torch.no_grad():
        for job, prompt in zip(jobs, seen["prompts"]):
            alone = tiny_model.prepare([job.request.conversation], [job.request.audio])
            expected = tiny_model.embed(alone["input_ids"], alone["slots"], alone["audio"])[0]
            torch.testing.assert_close(prompt["prompt_embeds"], expected)
    first = jobs[0].result()
    *deltas, second = jobs[1].events()
    assert deltas == [tiny_model.tokenizer.decode([42])]  # streamed: the cut text only
    assert first == Completion(tiny_model.tokenizer.decode([40, 41]), len(seen["prompts"][0]["prompt_embeds"]),
                               3, "stop")
    assert second.prompt_tokens == len(seen["prompts"][1]["prompt_embeds"])
    assert second.text == tiny_model.tokenizer.decode([42]) and second.finish_reason == "stop"
