"""The terminal chat, driven through a pipe as a user's script would drive it (tiny random model)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lalm.audio import MAX_CLIP_SECONDS, AudioError
from lalm.chat import ChatSession, split_path
from lalm.generation import Sampling
from lalm.serve_api import Limits

ROOT = Path(__file__).resolve().parents[1]
TURN = re.compile(r"\[turn (\d+): (\d+) encoder passes, (\d+) clips in context, (\d+) tokens")


@pytest.fixture(scope="module")
def checkpoint(tiny_config, tmp_path_factory):
    from lalm import LALM

    path = tmp_path_factory.mktemp("chat") / "tiny-ckpt"
    LALM(tiny_config.model).save_pretrained(path)
    return path


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "my clip.wav"
    t = np.arange(int(1.5 * 22050)) / 22050
    sf.write(path, (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 22050)
    return path


def chat(script: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "lalm.chat", "--max-new-tokens", "6", "--verbose", *args],
        input=script, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=300,
        cwd=ROOT, env={**os.environ, "PYTHONIOENCODING": "utf-8"}, check=False,
    )
    assert proc.returncode == 0, proc.stderr  # checked here to show stderr on failure
    return proc


def test_two_turns_audio_then_text_do_not_reencode_the_first_clip(checkpoint, wav):
    proc = chat(f'/audio "{wav}" What is said?\nAnd in French?\n/quit\nnot read\n', "--model", str(checkpoint))
    assert f"(attached {wav}: 1.5 s)" in proc.stdout
    assert proc.stdout.count("assistant> ") == 2
    turns = [m[:3] for m in TURN.findall(proc.stderr)]
    # turn 1 encodes the clip once; turn 2 still has it in context and runs no encoder at all
    assert turns == [("1", "1", "1"), ("2", "0", "1")]


def test_commands_and_errors(wav):
    script = "\n".join([
        "/help",
        "/audio /no/such.wav",
        "/bogus",
        f'/audio "{wav}"',  # attach only ...
        "",                 # ... and an empty line sends the clip alone
        "/reset",
        "hello again",      # after /reset: no clip in context
    ]) + "\n"  # EOF ends the session, like /quit
    proc = chat(script, "--config", "configs/tiny.yaml", "--system-prompt", "Be brief.")
    assert "/audio PATH [text]" in proc.stdout
    assert "error: /no/such.wav: no such audio file" in proc.stdout
    assert "unknown command /bogus" in proc.stdout
    assert "(conversation cleared)" in proc.stdout
    assert [m[1:3] for m in TURN.findall(proc.stderr)] == [("1", "1"), ("0", "0")]


def test_session_keeps_the_encoded_clips(tiny_model, wav):
    session = ChatSession(tiny_model, Sampling(3), system_prompt="Be brief.")
    clip = session.attach(str(wav))
    session.send("What is said?", lambda _: None)
    session.send("More?", lambda _: None)
    assert session.clips == [clip] and session.clips[0] is clip and not session.attached
    assert [m["role"] for m in session.history] == ["user", "assistant"] * 2
    assert session.history[0]["content"][0] == {"type": "audio"}


def test_split_path():
    assert split_path("a.wav what is it") == ("a.wav", "what is it")
    assert split_path('"my clip.wav" it\'s what?') == ("my clip.wav", "it's what?")
    assert split_path("a.wav") == ("a.wav", "")
    with pytest.raises(ValueError, match="unclosed quote"):
        split_path('"a.wav')


def test_the_chat_takes_the_clips_the_server_takes(tiny_model, tmp_path):
    """One per-clip limit for both: a clip the chat attaches is one the server accepts."""
    assert ChatSession(tiny_model, Sampling(3)).max_audio_seconds == Limits().max_audio_seconds == MAX_CLIP_SECONDS
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(130 * 1000, np.float32), 1000)  # 130 s, over the shared 120 s
    with pytest.raises(AudioError, match=r"longer than the 120 s limit; .*raise --max-audio-seconds"):
        ChatSession(tiny_model, Sampling(3)).attach(str(long))


def test_max_audio_seconds_flag(wav):
    proc = chat(f'/audio "{wav}"\n', "--config", "configs/tiny.yaml", "--max-audio-seconds", "1")
    assert "s of audio is longer than the 1 s limit" in proc.stdout and "--max-audio-seconds" in proc.stdout
    assert "(attached" not in proc.stdout


def test_a_prompt_over_the_context_is_refused_with_the_servers_message(tiny_model):
    """A pasted 200,000-character message is refused before generation (as the server refuses it),
    and the chat goes on with the next message."""
    import io

    from lalm.chat import run

    session, out = ChatSession(tiny_model, Sampling(3)), io.StringIO()
    run(session, iter(["word " * 40_000, "hello"]), out, io.StringIO(), False)
    refused = [line for line in out.getvalue().splitlines() if line.startswith("error: ")]
    assert len(refused) == 1, out.getvalue()
    assert re.search(r"error: the prompt is \d+ tokens \(audio included\) and max_tokens is 3: over the model's "
                     r"context of 4096", refused[0])
    assert [m["role"] for m in session.history] == ["user", "assistant"]  # the refused turn is not kept
