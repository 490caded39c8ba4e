"""Pieces several test files share: clips and manifests, a fake OpenAI-compatible server, running
the trainer, a small ASR corpus. Fixtures built on them live in conftest.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from lalm.eval.scoring.judge import Judge, JudgeConfig

ROOT = Path(__file__).resolve().parents[1]
ALIGN_CONFIG = ROOT / "configs" / "tiny_align.yaml"
SR = 16_000


def tone(freq: float, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_clip(path: Path, freq: float, seconds: float = 0.5) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(freq, seconds), SR)
    return path


def write_manifest(folder: Path, rows: list[dict], name: str = "manifest.jsonl") -> Path:
    """Rows with an ``freq`` get a clip at clips/<id>.wav of that pitch; ``audio`` is set relative."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for row in rows:
        row = dict(row)
        freq = row.pop("freq", None)
        if freq is not None:
            write_clip(folder / "clips" / f"{row['id']}.wav", freq)
            row.setdefault("audio", f"clips/{row['id']}.wav")
        lines.append(json.dumps(row))
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


# A reply script gets the request body and returns (HTTP status, reply texts).
Script = Callable[[dict], tuple[int, list[str]]]


class JSONHandler(BaseHTTPRequestHandler):
    """A quiet request handler that answers with JSON, the base of the tests' fake servers."""

    def reply(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class FakeJudgeServer:
    """A tiny ``/v1/chat/completions`` endpoint whose replies come from a script; records requests."""

    def __init__(self) -> None:
        self.script: Script = lambda body: (200, ["3"] * body.get("n", 1))
        self.requests: list[dict] = []
        self.delay_s = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(JSONHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.requests.append(body)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                time.sleep(server.delay_s)
                status, replies = server.script(body)
                with server._lock:
                    server.in_flight -= 1
                payload = (
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": i,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                            for i, text in enumerate(replies)
                        ],
                    }
                    if status == 200
                    else {"error": {"message": f"scripted {status}", "type": "server_error"}}
                )
                self.reply(status, payload)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def judge(self, **settings: object) -> Judge:
        config = JudgeConfig(
            model="judge-m",
            base_url=self.base_url,
            api_key="test-key",
            backoff_s=0.001,
            timeout_s=5,
            **settings,
        )
        return Judge(config, sleep=lambda s: None)


def align(*overrides, env=None, torchrun=0, background=False, config=ALIGN_CONFIG):
    cmd = [sys.executable, str(ROOT / "train" / "align.py"), "--config", str(config), *overrides]
    if torchrun:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={torchrun}", "--master_port",
               str(29500 + os.getpid() % 1000), *cmd[1:]]
    environ = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    if background:
        return subprocess.Popen(cmd, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done = subprocess.run(cmd, env=environ, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def training_batch_for(model, clips, targets):
    """A training batch built with the model's own processor, as the trainer builds it."""
    from lalm.model import pad_waveforms
    from lalm.processor import collate

    enc = [model.processor.encode([{"role": "user", "content": [{"type": "audio"}]}], [len(c)], target=t)
           for c, t in zip(clips, targets)]
    batch = collate(enc, model.tokenizer.pad_token_id)
    batch["waveforms"], batch["wave_lengths"] = pad_waveforms([torch.from_numpy(c) for c in clips])
    return batch


def make_corpus(folder: Path, n: int = 6) -> Path:
    """`n` short sine clips and a manifest over them with speaker metadata; returns the manifest path."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        tone = 0.1 * np.sin(np.arange(4800) * (0.02 + 0.01 * i)).astype(np.float32)
        sf.write(folder / f"clip{i}.wav", tone, 16000)
        meta = {"gender": "m" if i % 2 else "F", "emotion": ["hap", "ang", "neu"][i % 3], "age": 20 + 7 * i % 60}
        lines.append(json.dumps({"id": f"utt{i}", "audio": f"clip{i}.wav", "text": f"sentence {i} " * (1 + i % 4),
                                 "meta": meta, "speaker": f"spk{i % 2}"}))
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


TINY_WHISPER_WORDS = ["hello", "world", "cat", "dog", "sat", "on", "the", "mat", "a", "big", "red", "sun"]


def write_tiny_whisper(folder: Path) -> Path:
    """A tiny random transformers Whisper (encoder + decoder) with a word-level tokenizer: text tokens
    first, then the specials, so every id above <|endoftext|> is special as in the real vocabulary."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    folder.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"]
    vocab = {w: i for i, w in enumerate(TINY_WHISPER_WORDS + specials)}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="a"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.add_special_tokens(specials)
    tokenizer.save(str(folder / "tokenizer.json"))
    config = WhisperConfig(vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                           decoder_ffn_dim=32, num_mel_bins=80, max_source_positions=1500, max_target_positions=64,
                           eos_token_id=vocab["<|endoftext|>"], decoder_start_token_id=vocab["<|startoftranscript|>"],
                           pad_token_id=vocab["<|endoftext|>"], suppress_tokens=[], begin_suppress_tokens=[])
    torch.manual_seed(0)
    WhisperForConditionalGeneration(config).save_pretrained(folder)
    return folder
