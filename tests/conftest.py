"""Shared fixtures: tiny random models built from configs/tiny.yaml; nothing is downloaded."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
COLOURS = ["red", "blue", "green", "yellow"]


@pytest.fixture(scope="session")
def tiny_config():
    from lalm import load_config

    return load_config(TINY)


@pytest.fixture
def tiny_model(tiny_config):
    from lalm import LALM

    return LALM(tiny_config.model)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def needs_package(name: str):
    """Skip a real-weights test when the offline weight package is not installed."""
    return pytest.mark.skipif(importlib.util.find_spec(name) is None, reason=f"{name} is not installed")


@pytest.fixture(scope="session")
def sift(tmp_path_factory):
    """24 tone clips whose pitch encodes a colour (and meta.pitch: low or high, for objective label),
    answered in a SIFT-shaped JSONL, plus two bad rows."""
    root = tmp_path_factory.mktemp("sift")
    rng = np.random.default_rng(0)
    lines = []
    for i in range(24):
        k = i % 4
        n = int(16000 * rng.uniform(0.5, 2.0))
        t = np.arange(n) / 16000
        wav = 0.3 * np.sin(2 * np.pi * (200 + 150 * k) * t) + 0.01 * rng.standard_normal(n)
        sf.write(root / f"c{i}.wav", wav.astype(np.float32), 16000)
        lines.append({"id": f"c{i}", "audio": f"c{i}.wav", "text": COLOURS[k],
                      "response": f"The colour is {COLOURS[k]}.", "truncated": i == 5,
                      "meta": {"pitch": "low" if k < 2 else "high"}})
    (root / "broken.wav").write_text("not audio")
    rows = [json.dumps(r) for r in lines] + ["{bad json", json.dumps({"id": "b", "audio": "broken.wav", "response": "x"})]
    (root / "sift.jsonl").write_text("\n".join(rows) + "\n")
    return root / "sift.jsonl"


def hold_until_cancelled(streamer, started, seen: dict, wait_s: float = 30.0) -> None:
    """Make a generation streamer hold its first token until its row is cancelled (`wait_s` at most):
    `started` is set once the token is out, `seen["cancelled"]` records whether the cancel came.
    For tests of a client that leaves mid-answer (the server must cancel its row)."""
    import time

    put = streamer.put

    def put_then_wait(value):
        put(value)
        row = streamer.rows[0]
        if len(row.token_ids) == 1 and "cancelled" not in seen:
            started.set()
            deadline = time.monotonic() + wait_s
            while not row.cancelled() and time.monotonic() < deadline:
                time.sleep(0.02)
            seen["cancelled"] = row.cancelled()

    streamer.put = put_then_wait


@pytest.fixture
def server():
    """The fake OpenAI-compatible server (a real local HTTP server on a free port)."""
    from tests.helpers import FakeJudgeServer

    fake = FakeJudgeServer()
    yield fake
    fake.close()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny random kit checkpoint (configs/tiny.yaml), built once per session."""
    from lalm import LALM, load_config

    folder = tmp_path_factory.mktemp("ckpt") / "tiny"
    LALM(load_config(Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml").model).save_pretrained(
        folder
    )
    return folder
