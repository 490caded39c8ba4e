"""Models under test behind one interface: a batch of requests (audio and/or text) in, replies out.

Three kinds, so that a kit checkpoint, a peer behind a server and a cascade baseline are measured by
the same harness with the same prompts:

- ``KitResponder``: a kit checkpoint. A request with audio sends the clip (then any text) in one user
  turn; a request without audio is text mode, the same frozen LLM answering the text, which is the
  upper bound the audio path can reach.
- ``EndpointResponder``: any OpenAI-compatible chat server that accepts ``input_audio`` content
  parts (vLLM serving Qwen2-Audio, the kit's own server, ...); text mode sends plain text.
- ``CascadeResponder``: Whisper transcribes the clip and the wrapped responder answers the transcript
  as text, the classic ASR + LLM baseline.

A reply carries either a response or an error; a failed request never stops the batch.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import soundfile as sf

from lalm.eval.asr import Transcriber
from lalm.generation import Sampling, resolve_device
from lalm.openai_client import ChatClient, EndpointError, RetryPolicy


@dataclass(frozen=True)
class Request:
    """One question: a 16 kHz mono clip and/or text; with both, the audio comes first in the turn."""

    text: str | None
    audio: np.ndarray | None = None


@dataclass(frozen=True)
class Reply:
    response: str | None = None
    error: str | None = None
    transcript: str | None = None


class Responder(Protocol):
    """Answers a batch of requests, one reply per request, in order."""

    def respond(self, requests: Sequence[Request]) -> list[Reply]: ...


def _messages(request: Request, system_prompt: str | None, audio_part: Any) -> list[dict]:
    """A chat: the optional system message, then one user turn with the audio part before the text."""
    if request.audio is None and not request.text:
        raise ValueError("a request needs audio or text")
    if request.audio is None:
        content: Any = request.text
    else:
        content = [audio_part] + ([{"type": "text", "text": request.text}] if request.text else [])
    system = [{"role": "system", "content": system_prompt}] if system_prompt is not None else []
    return system + [{"role": "user", "content": content}]


class KitResponder:
    """A kit checkpoint: batched ``generate_batch``, greedy unless a temperature is set.
    ``system_prompt`` None keeps the checkpoint's configured one."""

    def __init__(self, model: Any, sampling: Sampling, system_prompt: str | None = None):
        self.model = model
        self.sampling = sampling
        self.system_prompt = system_prompt

    @classmethod
    def from_checkpoint(cls, path: str | Path, sampling: Sampling, system_prompt: str | None = None,
                        device: str = "auto", decoding: Sequence[str] = ()) -> KitResponder:
        """``decoding``: overrides of the checkpoint's recognizer decoding settings
        (``model.recognizer.options.KEY=VALUE``, `LALM.from_pretrained`'s ``overrides``)."""
        from lalm import LALM

        model = LALM.from_pretrained(path, overrides=list(decoding))
        return cls(model.to(resolve_device(device)).eval(), sampling, system_prompt)

    def respond(self, requests: Sequence[Request]) -> list[Reply]:
        import torch

        s = self.sampling
        conversations = [_messages(r, self.system_prompt, {"type": "audio"}) for r in requests]
        # Encoded once, as one batch: the answer and the transcript read the same clip.
        encoded = iter(self.model.encode_clips([r.audio for r in requests if r.audio is not None]))
        audio = [[next(encoded)] if r.audio is not None else [] for r in requests]
        if s.seed is not None:
            torch.manual_seed(s.seed)  # per batch, so a resumed run samples its batches as a fresh one would
        texts = self.model.generate_batch(conversations, audio, max_new_tokens=s.max_new_tokens, **s.generate_kwargs())
        heard = [None] * len(requests)
        clips = [i for i, r in enumerate(requests) if r.audio is not None]
        if clips and self.model.hears_words:  # a recognizer or a ctc projector: keep what it heard beside the answer
            for i, text in zip(clips, self.model.transcribe([audio[i][0] for i in clips])):
                heard[i] = text
        return [Reply(response=text.strip(), transcript=t) for text, t in zip(texts, heard)]


def wav_base64(wave: np.ndarray, sample_rate: int = 16_000) -> str:
    """A clip as base64 16-bit PCM WAV, the ``input_audio`` payload."""
    buffer = io.BytesIO()
    sf.write(buffer, wave, sample_rate, format="WAV", subtype="PCM_16")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


#: A model under test may take long to answer (a long clip, a busy server): long tries, few of them.
ENDPOINT_RETRIES = RetryPolicy(attempts=4, timeout_s=600.0)


class EndpointResponder:
    """An OpenAI-compatible chat endpoint; a batch is sent as concurrent requests."""

    def __init__(self, base_url: str, model: str, sampling: Sampling, system_prompt: str | None = None,
                 api_key: str | None = None, policy: RetryPolicy = ENDPOINT_RETRIES):
        self.model = model
        self.sampling = sampling
        self.system_prompt = system_prompt
        self._client = ChatClient(base_url, api_key, policy)

    def _one(self, request: Request) -> Reply:
        part = None
        if request.audio is not None:
            part = {
                "type": "input_audio",
                "input_audio": {"data": wav_base64(request.audio), "format": "wav"},
            }
        try:
            completion = self._client.chat(self.model, _messages(request, self.system_prompt, part), self.sampling)
        except EndpointError as err:
            return Reply(error=f"endpoint: {err}")
        if not completion.choices:
            return Reply(error="endpoint: the reply has no choices")
        return Reply(response=(completion.choices[0].message.content or "").strip())

    def respond(self, requests: Sequence[Request]) -> list[Reply]:
        with ThreadPoolExecutor(max_workers=max(1, len(requests))) as pool:
            return list(pool.map(self._one, requests))


def cascade_text(transcript: str, question: str | None) -> str:
    """The text the LLM gets in the cascade: the transcript, and any question that came with the audio."""
    return f'Audio transcript: "{transcript}"\n{question}' if question else transcript


class CascadeResponder:
    """ASR, then the wrapped responder in text mode; the transcript is kept with each reply."""

    def __init__(self, asr: Transcriber, llm: Responder):
        self.asr = asr
        self.llm = llm

    def respond(self, requests: Sequence[Request]) -> list[Reply]:
        heard = iter(self.asr([r.audio for r in requests if r.audio is not None]))  # one batch
        transcripts = [next(heard) if r.audio is not None else "" for r in requests]
        texts = [cascade_text(t, r.text) for t, r in zip(transcripts, requests)]
        asked = [i for i, text in enumerate(texts) if text.strip()]
        answers = dict(zip(asked, self.llm.respond([Request(texts[i]) for i in asked]))) if asked else {}
        return [
            Reply(answers[i].response, answers[i].error, t)
            if i in answers
            else Reply(error="ASR: empty transcript, nothing to ask", transcript=t)
            for i, t in enumerate(transcripts)
        ]
