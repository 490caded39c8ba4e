"""The OpenAI-compatible endpoint adapter against a real local HTTP server that takes input_audio parts.

The server decodes each base64 WAV it is sent and answers from the clip's pitch, so a right answer
proves the audio arrived intact; in text mode it answers from a hint in the text. With half the
audio answers wrong on purpose, the run must report audio 50, text 100 and a gap of 0.50.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from lalm.eval import voicebench
from lalm.eval.models import CascadeResponder, EndpointResponder, Request
from lalm.generation import Sampling
from lalm.jsonl import read_jsonl_skip_torn_tail
from tests.helpers import FakeJudgeServer, write_manifest

PITCH_LETTER = {200: "A", 300: "B", 400: "C", 500: "D"}
REFERENCES = ["A", "B", "A", "A"]  # the clips say A, B, C, D: two right, two wrong


def peer(body: dict) -> tuple[int, list[str]]:
    """A deterministic "audio model": the letter of the clip's pitch, or of the text's hint."""
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return 200, [f"The answer is ({content.rsplit('hint: ', 1)[-1].strip()})."]
    (part,) = [p for p in content if p["type"] == "input_audio"]
    assert part["input_audio"]["format"] == "wav"
    wave, rate = sf.read(io.BytesIO(base64.b64decode(part["input_audio"]["data"])))
    pitch = int(round(np.argmax(np.abs(np.fft.rfft(wave))) * rate / len(wave), -2))
    if pitch not in PITCH_LETTER:
        return 400, []
    return 200, [f"I think it is {PITCH_LETTER[pitch]}."]


def test_endpoint_audio_and_text_and_the_gap(tmp_path: Path, server: FakeJudgeServer, capsys) -> None:
    server.script = peer
    rows = [
        {"id": f"q{i}", "freq": freq, "prompt": f"Question {i}. hint: {ref}", "reference": ref}
        for i, (freq, ref) in enumerate(zip(PITCH_LETTER, REFERENCES))
    ] + [{"id": "odd", "freq": 700, "prompt": "Question odd. hint: C", "reference": "D"}]  # text: wrong
    manifest = write_manifest(tmp_path / "data", rows)
    out = tmp_path / "run"
    argv = [
        "--endpoint",
        server.base_url,
        "--endpoint-model",
        "peer",
        "--mode",
        "both",
        "--out",
        str(out),
        "--manifest",
        str(manifest),
        "--subset",
        "openbookqa",
        "--system-prompt",
        "Be brief.",
        "--max-new-tokens",
        "32",
        "--batch-size",
        "3",
        "--no-progress",
    ]
    assert voicebench.main(argv) == 0

    audio_requests = [b for b in server.requests if isinstance(b["messages"][-1]["content"], list)]
    assert len(audio_requests) == 5
    first = audio_requests[0]
    assert first["messages"][0] == {"role": "system", "content": "Be brief."}
    assert (first["model"], first["max_tokens"], first["temperature"]) == ("peer", 32, 0.0)
    summary = json.loads((out / "summary.json").read_text())
    modes = summary["sets"]["openbookqa"]["modes"]
    assert modes["audio"]["score"] == 50.0 and modes["audio"]["n_failed"] == 1  # the 700 Hz clip got a 400
    assert modes["text"]["score"] == 80.0  # 4 of 5: it also answered "odd", wrongly
    # speech/text compares the same items: the 4 both modes answered (audio 50, text 100), not 50/80
    paired = summary["sets"]["openbookqa"]["paired"]
    assert (paired["audio"], paired["text"], paired["n_items"], paired["only_text"]) == (50.0, 100.0, 4, ["odd"])
    assert summary["overall"]["gap"]["ratio"] == 0.5
    assert summary["run"]["model"] == {"kind": "endpoint", "url": server.base_url, "model": "peer"}
    failed = {r["id"]: r for r in read_jsonl_skip_torn_tail(out / "openbookqa.audio.jsonl")}["odd"]
    assert failed["response"] is None and "400" in failed["error"]

    capsys.readouterr()
    assert voicebench.main(["--report", str(out)]) == 0
    assert "| openbookqa | 0-100 | 50.00 | 80.00 | 0.50 (on 4 items both modes answered) |" in capsys.readouterr().out

    server.requests.clear()
    server.script = lambda body: (
        200,
        ["It is C."],
    )  # the endpoint recovers: only the failed item is re-asked
    assert voicebench.main(argv) == 0
    assert len(server.requests) == 1
    assert (
        json.loads((out / "summary.json").read_text())["sets"]["openbookqa"]["modes"]["audio"]["n_failed"]
        == 0
    )


def test_cascade_sends_the_transcript_as_text(server: FakeJudgeServer) -> None:
    server.script = lambda body: (200, [f"echo: {body['messages'][-1]['content']}"])
    llm = EndpointResponder(server.base_url, "peer", Sampling(max_new_tokens=8))
    cascade = CascadeResponder(lambda waves: ["what is two plus two"] * len(waves), llm)
    replies = cascade.respond(
        [Request(None, np.zeros(8000, np.float32)), Request("Which animal?", np.zeros(8000, np.float32))]
    )
    assert (
        replies[0].response == "echo: what is two plus two"
        and replies[0].transcript == "what is two plus two"
    )
    assert replies[1].response == 'echo: Audio transcript: "what is two plus two"\nWhich animal?'
    silent = CascadeResponder(lambda waves: [""] * len(waves), llm).respond([Request(None, np.zeros(8000, np.float32))])
    assert silent[0].response is None and "empty transcript" in silent[0].error


def test_bad_reference_data_fails_scoring_with_the_file_named(
    tmp_path: Path, server: FakeJudgeServer, capsys
) -> None:
    server.script = lambda body: (200, ["A"])
    manifest = write_manifest(
        tmp_path / "data", [{"id": "q", "freq": 300, "prompt": "Pick one.", "reference": "E"}]
    )
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
        str(manifest),
        "--subset",
        "mmsu",
        "--no-progress",
    ]
    assert voicebench.main(argv) == 2
    assert "scoring mmsu as mmsu failed" in capsys.readouterr().err
    rows = read_jsonl_skip_torn_tail(out / "mmsu.audio.jsonl")
    assert rows[0]["response"] == "A"  # the answer is kept for the rerun


def test_short_answer_manifest_scores_against_acceptable_answers(
    tmp_path: Path, server: FakeJudgeServer
) -> None:
    server.script = lambda body: (200, ["The capital of France is Paris."])
    rows = [
        {"id": "fr", "freq": 300, "text": "What is the capital of France?", "answers": ["Paris"]},
        {"id": "de", "freq": 300, "text": "What is the capital of Germany?", "answers": ["Berlin"]},
    ]
    out = tmp_path / "run"
    argv = [
        "--endpoint",
        server.base_url,
        "--endpoint-model",
        "peer",
        "--mode",
        "text",
        "--out",
        str(out),
        "--manifest",
        str(write_manifest(tmp_path / "data", rows)),
        "--subset",
        "capitals",
        "--scorer",
        "short_answer",
        "--no-progress",
    ]
    assert voicebench.main(argv) == 0
    entry = json.loads((out / "summary.json").read_text())["sets"]["capitals"]
    assert (entry["scorer"], entry["modes"]["text"]["score"]) == ("short_answer", 50.0)
    assert {r["id"]: r["result"]["matched"] for r in read_jsonl_skip_torn_tail(out / "capitals.text.jsonl")} == {
        "fr": "Paris",
        "de": None,
    }
