"""The OpenAI chat-completions protocol: validating requests, shaping responses, chunks and errors.

Requests are checked completely here, in the HTTP thread, before they reach the model's queue: a
bad request costs no model time and gets a 4xx in OpenAI's error shape naming the offending field
(`messages[1].content[0].input_audio.data`). Audio arrives as `input_audio` parts (base64 bytes of
a wav/mp3/flac/ogg file, OpenAI's format) or as vLLM's `audio_url` parts with a `data:` URL.
A field the server does not implement is refused by name rather than silently ignored.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile as sf

from lalm.audio import MAX_CLIP_SECONDS, AudioError, prepare_waveform
from lalm.generation import Sampling
from lalm.processor import AUDIO_SENTINEL, TARGET_SENTINEL, Conversation

AUDIO_FORMATS = ("wav", "mp3", "flac", "ogg")
MAX_SAMPLE_RATE = 192_000
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
DATA_URL = re.compile(r"data:audio/([\w.+-]+);base64,(.*)", re.DOTALL)
MAX_STOP = 4  # stop sequences per request, as OpenAI allows

#: Fields that are honoured (parse_chat_request reads them).
HONOURED = {"messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stream",
            "stream_options", "n", "stop", "seed"}
#: Fields accepted and not acted on: bookkeeping that cannot change the answer. `model` is echoed (the
#: server has one), `parallel_tool_calls` only qualifies `tools`, which are refused.
ACCEPTED = {"model", "user", "metadata", "store", "service_tier", "safety_identifier", "prompt_cache_key",
            "parallel_tool_calls"}
#: Fields not implemented, each with the values that ask for nothing (OpenAI's defaults), which pass.
REFUSED = {
    "logprobs": (None, False), "top_logprobs": (None, 0), "tools": (None, []), "tool_choice": (None, "none"),
    "functions": (None, []), "function_call": (None, "none"), "response_format": (None, {"type": "text"}),
    "logit_bias": (None, {}), "frequency_penalty": (None, 0), "presence_penalty": (None, 0),
    "modalities": (None, ["text"]), "audio": (None,), "prediction": (None,), "reasoning_effort": (None,),
    "verbosity": (None,), "web_search_options": (None,),
}


class APIError(Exception):
    """An error answer: HTTP status plus OpenAI's `{"error": {message, type, param, code}}` body."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict:
        kind = "server_error" if self.status >= 500 else "invalid_request_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; each is a server flag (see `lalm.serve`)."""

    max_audio_bytes: int = 25 * 2**20  # per clip, as sent (OpenAI's audio upload limit)
    max_audio_seconds: float = MAX_CLIP_SECONDS  # per clip; the terminal chat's limit too
    max_tokens: int = 512  # answer length cap, and the default when a request gives none
    max_messages: int = 64
    max_request_bytes: int = 64 * 2**20  # the whole JSON body
    # Text is tokenised twice, in the request's thread to measure the prompt and again in the model
    # thread's generate call, so it is bounded before either: ~25k tokens of English, a fraction of a second.
    max_text_chars: int = 100_000  # all text parts of all messages together
    max_prompt_tokens: int = 32_768  # the rendered prompt, audio positions included


@dataclass
class ChatRequest:
    """A validated request: the conversation in the kit's format and its clips (16 kHz mono)."""

    conversation: Conversation
    audio: list  # 16 kHz mono arrays; EncodedClips once admitted by a model whose prompt reads content
    sampling: Sampling
    stream: bool = False
    include_usage: bool = False
    stop: tuple[str, ...] = ()


def parse_chat_request(body: Any, limits: Limits, default_temperature: float = 0.0,
                       default_top_p: float = 1.0) -> ChatRequest:
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object")
    refuse_unimplemented(body)
    if body.get("n") not in (None, 1):
        raise APIError(400, "only n=1 is supported", "n", "unsupported_parameter")
    stream = body.get("stream") or False
    options = body.get("stream_options") or {}
    if not isinstance(stream, bool) or not isinstance(options, dict):
        raise APIError(400, "'stream' must be a boolean and 'stream_options' an object", "stream")
    sampling = Sampling(
        max_new_tokens=parse_max_tokens(body, limits),
        temperature=number(body, "temperature", default_temperature, 0.0, 2.0),
        top_p=number(body, "top_p", default_top_p, 0.0, 1.0, open_low=True),
        seed=parse_seed(body),
    )
    stop = parse_stop(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "'messages' must be a non-empty list", "messages")
    if len(messages) > limits.max_messages:
        raise APIError(400, f"{len(messages)} messages is more than this server's limit of {limits.max_messages} "
                       "(--max-messages)", "messages", "too_many_messages")
    clips: list[tuple[dict, str]] = []
    conversation = [parse_message(m, f"messages[{i}]", clips) for i, m in enumerate(messages)]
    chars = sum(len(text) for text in conversation_texts(conversation))
    if chars > limits.max_text_chars:
        raise APIError(400, f"the messages hold {chars:,} characters of text, over this server's limit of "
                       f"{limits.max_text_chars:,} (--max-text-chars)", "messages", "text_too_long")
    # Decoding last: the costly part runs only for otherwise valid requests.
    audio = [audio_part(part, where, limits) for part, where in clips]
    return ChatRequest(conversation, audio, sampling, stream, bool(options.get("include_usage")), stop)


def refuse_unimplemented(body: dict) -> None:
    """A field asking for something this server does not do is a 400 naming it, as OpenAI answers
    fields it does not know: ignoring it would return an answer that silently is not what was asked."""
    for key, value in body.items():
        if key in HONOURED or key in ACCEPTED:
            continue
        if key not in REFUSED:
            raise APIError(400, f"unrecognized request field {key!r}; this server implements "
                           f"{', '.join(sorted(HONOURED))}", key, "unsupported_parameter")
        if not any(value == ok and isinstance(value, bool) == isinstance(ok, bool) for ok in REFUSED[key]):
            allowed = " or ".join(json.dumps(ok) for ok in REFUSED[key])
            raise APIError(400, f"'{key}' is not supported by this server (it accepts only {allowed})", key,
                           "unsupported_parameter")


def conversation_texts(conversation: Conversation) -> Iterator[str]:
    for message in conversation:
        if isinstance(message["content"], str):
            yield message["content"]
        else:
            yield from (part["text"] for part in message["content"] if part["type"] == "text")


def text_field(value: str, where: str) -> str:
    """Text as the tokenizer can take it: valid Unicode, and free of the processor's reserved characters."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:  # JSON's "\ud800" escapes decode to lone surrogates
        raise APIError(400, f"{where} is not valid Unicode: {err.reason} at character {err.start} "
                       f"({value[err.start]!r})", where, "invalid_text") from err
    for reserved in (AUDIO_SENTINEL, TARGET_SENTINEL):
        if (at := value.find(reserved)) >= 0:
            raise APIError(400, f"{where} holds the character U+{ord(reserved):04X} at {at}, which this server "
                           "reserves to mark where audio goes in the prompt", where, "invalid_text")
    return value


def parse_message(message: Any, where: str, clips: list[tuple[dict, str]]) -> dict:
    """The message in the kit's format; its audio parts are appended to `clips` to decode later."""
    if not isinstance(message, dict):
        raise APIError(400, f"{where} must be an object with 'role' and 'content'", where)
    role = ROLES.get(message.get("role"))
    if role is None:
        raise APIError(400, f"{where}.role {message.get('role')!r} is not one of {sorted(ROLES)}", f"{where}.role")
    content = message.get("content")
    if isinstance(content, str):
        return {"role": role, "content": text_field(content, f"{where}.content")}
    if not isinstance(content, list):
        raise APIError(400, f"{where}.content must be a string or a list of content parts", f"{where}.content")
    parts = []
    for j, part in enumerate(content):
        here = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": text_field(part["text"], f"{here}.text")})
        elif kind in ("input_audio", "audio_url"):
            clips.append((part, here))
            parts.append({"type": "audio"})
        else:
            raise APIError(400, f"{here}: content part type {kind!r} is not supported; use 'text' (with a "
                           "string 'text') or 'input_audio'", here)
    return {"role": role, "content": parts}


def audio_part(part: dict, where: str, limits: Limits) -> np.ndarray:
    """`{"type": "input_audio", "input_audio": {"data", "format"}}` or an `audio_url` data: URL."""
    if part["type"] == "input_audio":
        spec = part.get("input_audio")
        if not isinstance(spec, dict) or not isinstance(spec.get("data"), str):
            raise APIError(400, f"{where}.input_audio must be {{'data': <base64>, 'format': ...}}", f"{where}.input_audio")
        data, fmt, where = spec["data"], spec.get("format"), f"{where}.input_audio"
    else:
        url = (part.get("audio_url") or {}).get("url") if isinstance(part.get("audio_url"), dict) else None
        match = DATA_URL.fullmatch(url or "")
        if match is None:
            raise APIError(400, f"{where}.audio_url.url must be a data:audio/<format>;base64,... URL "
                           "(this server fetches nothing)", f"{where}.audio_url")
        (fmt, data), where = match.groups(), f"{where}.audio_url"
        fmt = {"x-wav": "wav", "wave": "wav", "mpeg": "mp3", "x-flac": "flac"}.get(fmt, fmt)
    if fmt not in AUDIO_FORMATS:
        raise APIError(400, f"{where}: audio format {fmt!r} is not one of {list(AUDIO_FORMATS)}", f"{where}.format")
    return decode_audio(data, where, limits)


def decode_audio(data: str, where: str, limits: Limits) -> np.ndarray:
    """Base64 file bytes -> 16 kHz mono float32, checked against the size and duration limits."""
    if len(data) * 3 // 4 > limits.max_audio_bytes:
        raise APIError(400, f"{where}: the clip is {len(data) * 3 // 4:,} bytes, over this server's limit of "
                       f"{limits.max_audio_bytes:,} bytes (--max-audio-mb)", where, "audio_too_large")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as err:
        raise APIError(400, f"{where}: the audio data is not valid base64 ({err})", where, "invalid_audio") from err
    try:
        with sf.SoundFile(io.BytesIO(raw)) as f:
            seconds = f.frames / f.samplerate
            if seconds > limits.max_audio_seconds:
                raise APIError(400, f"{where}: the clip is {seconds:.1f} s long, over this server's limit of "
                               f"{limits.max_audio_seconds:g} s (--max-audio-seconds)", where, "audio_too_long")
            if f.samplerate > MAX_SAMPLE_RATE:
                raise APIError(400, f"{where}: {f.samplerate} Hz audio is over {MAX_SAMPLE_RATE} Hz", where,
                               "invalid_audio")
            # Downmixed block by block: a small compressed file may hold many channels.
            blocks = [b.mean(axis=1) for b in f.blocks(2**16, dtype="float32", always_2d=True)]
            mono = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
            rate = f.samplerate
    except (sf.SoundFileError, RuntimeError, ValueError) as err:
        raise APIError(400, f"{where}: the audio could not be decoded as wav/mp3/flac/ogg ({err})", where,
                       "invalid_audio") from err
    try:
        return prepare_waveform(mono, rate, source=where, max_seconds=limits.max_audio_seconds)
    except AudioError as err:
        raise APIError(400, str(err), where, "invalid_audio") from err


def parse_max_tokens(body: dict, limits: Limits) -> int:
    key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    value = body.get(key)
    if value is None:
        return limits.max_tokens
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise APIError(400, f"'{key}' must be a positive integer", key)
    if value > limits.max_tokens:
        raise APIError(400, f"'{key}' is {value}, over this server's limit of {limits.max_tokens} (--max-tokens)",
                       key, "max_tokens_too_large")
    return value


def parse_stop(body: dict) -> tuple[str, ...]:
    """`stop`: a string or a list of up to 4 non-empty strings (OpenAI's rule); null means none."""
    value = body.get("stop")
    stop = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    if value is None:
        return ()
    if stop is None or len(stop) > MAX_STOP or not all(isinstance(s, str) and s for s in stop):
        raise APIError(400, f"'stop' must be a non-empty string or a list of at most {MAX_STOP} of them", "stop")
    return tuple(text_field(s, f"stop[{i}]") for i, s in enumerate(stop))


def parse_seed(body: dict) -> int | None:
    value = body.get("seed")
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                              or not -(2**63) <= value < 2**64):
        raise APIError(400, "'seed' must be a 64-bit integer", "seed")
    return value


def number(body: dict, key: str, default: float, low: float, high: float, open_low: bool = False) -> float:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not (
        (low < value if open_low else low <= value) and value <= high
    ):
        raise APIError(400, f"'{key}' must be a number in {'(' if open_low else '['}{low:g}, {high:g}]", key)
    return float(value)


# --------------------------------------------------------------------------------------------- responses


@dataclass(frozen=True)
class Completion:
    """One finished answer with its token counts."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end of turn or a stop sequence) or "length"

    def usage(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


class ResponseShape:
    """The id, time and model name shared by one response or all chunks of one stream."""

    def __init__(self, model: str):
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model

    def _head(self, obj: str) -> dict:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model}

    def completion(self, done: Completion) -> dict:
        message = {"role": "assistant", "content": done.text, "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": done.finish_reason}
        return {**self._head("chat.completion"), "choices": [choice], "usage": done.usage()}

    def chunk(self, delta: dict, finish_reason: str | None = None) -> dict:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**self._head("chat.completion.chunk"), "choices": [choice]}

    def usage_chunk(self, done: Completion) -> dict:
        return {**self._head("chat.completion.chunk"), "choices": [], "usage": done.usage()}
