"""An LLM judge behind any OpenAI-compatible chat endpoint, with retries, a sample cache and a pool.

Configuration comes from arguments or the environment (``LALM_JUDGE_MODEL``,
``LALM_JUDGE_BASE_URL``, ``LALM_JUDGE_API_KEY``); no model means no judge, and judge-scored sets
then report "skipped: no judge configured" rather than a zero.

Requests go through the kit's one endpoint client (`lalm.openai_client`): retried with exponential
backoff, a bounded number of times, on the errors a later attempt can cure; other API errors (a bad
key, an unknown model) fail at once. A request that still fails leaves an error message on its item,
never an exception out of the batch and never a made-up score.

Judge outputs are kept per item as *samples*: ``{"key", "raw", "value"}`` dicts, plus
``"parse_error"`` when the parser could not read the reply (``value`` is then None and ``raw``
keeps the reply). ``key`` fingerprints what was asked (model, sampling settings, messages), so a
sample is only reused for exactly the same question. Scorers take an item's existing samples from
its ``judge_samples`` field and request only the ones still missing: a rerun after an outage fills
the gaps and pays for nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from lalm.openai_client import ChatClient, EndpointError, RetryPolicy

ENV_MODEL = "LALM_JUDGE_MODEL"
ENV_BASE_URL = "LALM_JUDGE_BASE_URL"
ENV_API_KEY = "LALM_JUDGE_API_KEY"

Messages = list[dict[str, str]]
Sample = dict[str, Any]
Parser = Callable[[str], Any]


@dataclass(frozen=True)
class JudgeConfig:
    """Where the judge lives and how it samples. Defaults are VoiceBench's (temperature 0.5, top-p
    0.95, 1024 tokens); ``request_n=False`` asks one sample per call for servers that reject ``n``."""

    model: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    temperature: float = 0.5
    top_p: float = 0.95
    max_tokens: int = 1024
    max_attempts: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    timeout_s: float = 120.0
    max_workers: int = 8
    request_n: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_workers < 1:
            raise ValueError("max_attempts and max_workers must be at least 1")

    @classmethod
    def from_env(
        cls,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        **settings: Any,
    ) -> JudgeConfig | None:
        """Arguments first, then the ``LALM_JUDGE_*`` variables; None when no model is named."""
        model = model or os.environ.get(ENV_MODEL)
        if not model:
            return None
        return cls(
            model=model,
            base_url=base_url or os.environ.get(ENV_BASE_URL) or None,
            api_key=api_key or os.environ.get(ENV_API_KEY) or None,
            **settings,
        )

    def record(self) -> dict[str, Any]:
        """What a result should say about its judge (never the key)."""
        return {
            "model": self.model,
            "base_url": self.base_url,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
        }


class JudgeError(RuntimeError):
    """A judge request that failed for good (after retries, or on a non-retryable error)."""


class Judge:
    """Sends chat requests to the configured endpoint; thread-safe, one HTTP client shared."""

    def __init__(self, config: JudgeConfig, *, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        policy = RetryPolicy(attempts=config.max_attempts, backoff_s=config.backoff_s,
                             max_backoff_s=config.max_backoff_s, timeout_s=config.timeout_s)
        self._client = ChatClient(config.base_url, config.api_key, policy, sleep=sleep)

    def complete(self, messages: Messages, n: int, temperature: float | None = None) -> list[str]:
        """``n`` sampled replies to ``messages`` (at ``temperature``, else the configured one); a
        server returning fewer choices is asked again."""
        replies: list[str] = []
        while len(replies) < n:
            replies += self._request(messages, n - len(replies) if self.config.request_n else 1, temperature)
        return replies[:n]

    def _request(self, messages: Messages, n: int, temperature: float | None = None) -> list[str]:
        cfg = self.config
        try:
            completion = self._client.create(
                model=cfg.model, messages=messages, temperature=cfg.temperature if temperature is None else temperature,
                top_p=cfg.top_p, max_tokens=cfg.max_tokens, n=n,
            )
        except EndpointError as error:
            raise JudgeError(str(error)) from error
        if not completion.choices:
            raise JudgeError("the judge returned no choices")
        return [choice.message.content or "" for choice in completion.choices]


@dataclass(frozen=True)
class JudgeRequest:
    """``n`` judge samples wanted for ``messages``, read by ``parse`` (None = unparsable), at
    ``temperature`` when a benchmark fixes it per request (None = the judge's configured one)."""

    messages: Messages
    n: int
    parse: Parser
    temperature: float | None = None


def request_key(config: JudgeConfig, messages: Messages, temperature: float | None = None) -> str:
    """Fingerprint of what is asked; a cached sample counts only for an identical request."""
    payload = json.dumps(
        [
            config.model,
            config.temperature if temperature is None else temperature,
            config.top_p,
            config.max_tokens,
            messages,
        ],
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _sample(key: str, raw: str, parse: Parser) -> Sample:
    value = parse(raw)
    sample: Sample = {"key": key, "raw": raw, "value": value}
    if value is None:
        sample["parse_error"] = "unparsable judge reply"
    return sample


def fill_samples(
    judge: Judge, request: JudgeRequest, cached: Sequence[Sample] = ()
) -> tuple[list[Sample], str | None]:
    """The request's samples: matching cached ones first, then new ones for what is missing.

    Returns ``(samples, error)``; on failure ``samples`` holds what could be had and ``error``
    says why the rest is missing. Cached samples are re-parsed, so a parser fix applies to them.
    """
    key = request_key(judge.config, request.messages, request.temperature)
    kept = [_sample(key, s["raw"], request.parse) for s in cached if s.get("key") == key][: request.n]
    missing = request.n - len(kept)
    if missing <= 0:
        return kept, None
    try:
        replies = judge.complete(request.messages, missing, request.temperature)
    except JudgeError as error:
        return kept, str(error)
    return kept + [_sample(key, raw, request.parse) for raw in replies], None


@dataclass(frozen=True)
class ItemJudgement:
    """One item's judge outcome: samples per request (in request order) and any request errors."""

    samples: list[list[Sample]]
    errors: list[str]

    def record(self) -> dict[str, Any]:
        """The fields a per-item result carries; ``judge_samples`` is the cache to pass back next run."""
        return {
            "judge_samples": [s for group in self.samples for s in group],
            "judge_error": "; ".join(self.errors) or None,
        }


def judge_items(
    judge: Judge, requests: Sequence[Sequence[JudgeRequest]], cached: Sequence[Sequence[Sample]]
) -> list[ItemJudgement]:
    """Fill every item's requests from its cached samples and the judge, ``max_workers`` at a time.

    ``requests[i]`` are item i's requests and ``cached[i]`` its existing samples; the result is in
    item order.
    """
    jobs = [(request, cached[i]) for i, item_requests in enumerate(requests) for request in item_requests]
    with ThreadPoolExecutor(max_workers=judge.config.max_workers) as pool:
        outcomes = iter(list(pool.map(lambda job: fill_samples(judge, *job), jobs)))
    judgements = []
    for item_requests in requests:
        filled = [next(outcomes) for _ in item_requests]
        judgements.append(ItemJudgement([s for s, _ in filled], [e for _, e in filled if e]))
    return judgements


def judge_summary(
    judge: Judge, requests: Sequence[Sequence[JudgeRequest]], judgements: Sequence[ItemJudgement]
) -> dict[str, Any]:
    """Summary fields every judged set reports: the judge, sample counts, failures and a status."""
    lacking = sum(
        any(len(got) < request.n for got, request in zip(j.samples, item_requests))
        for j, item_requests in zip(judgements, requests)
    )
    samples = [s for j in judgements for group in j.samples for s in group]
    status = (
        "ok"
        if not lacking
        else (
            f"incomplete: {lacking} item(s) lack judge samples (see judge_error); "
            "rerun with their judge_samples to fill only what is missing"
        )
    )
    return {
        "judge": judge.config.record(),
        "samples_per_request": max((r.n for rs in requests for r in rs), default=0),
        "n_samples": len(samples),
        "n_unparsable_samples": sum(s["value"] is None for s in samples),
        "n_judge_errors": sum(bool(j.errors) for j in judgements),
        "status": status,
    }


def make_judge(
    model: str | None = None, base_url: str | None = None, api_key: str | None = None, **settings: Any
) -> Judge | None:
    """A ``Judge`` from arguments or the environment, or None when no judge model is configured."""
    config = JudgeConfig.from_env(model, base_url, api_key, **settings)
    return Judge(config) if config else None
