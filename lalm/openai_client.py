"""The kit's one client of OpenAI-compatible chat endpoints, with one retry policy.

SIFT's `openai` backend, the LLM judge and the evaluation of a model behind a server all send their
requests through `ChatClient`. A request is retried with exponential backoff, a bounded number of
times, on the errors a later attempt can cure (connection errors, timeouts, 408/409/429 and 5xx);
any other API error (a bad key, an unknown model, a 400 for a prompt the server rejects) fails at
once. The SDK's own retries are off, so attempts, backoff and errors are counted here only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lalm.generation import Sampling


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one request is tried."""

    attempts: int = 5
    """Tries in all (the first one included)."""
    backoff_s: float = 1.0
    """Wait before the second try; doubled before each later one."""
    max_backoff_s: float = 30.0
    """The longest wait between two tries."""
    timeout_s: float = 120.0
    """Seconds one try may take."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a request needs at least one attempt")

    def wait(self, attempt: int) -> float:
        """Seconds to wait after failed try number `attempt` (1-based)."""
        return min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))


class EndpointError(ConnectionError):
    """A request that failed for good: not retryable, or out of attempts. The message names the endpoint."""


def retryable(error: Exception) -> bool:
    import openai

    if isinstance(error, openai.APIConnectionError):  # APITimeoutError is one
        return True
    return isinstance(error, openai.APIStatusError) and (error.status_code in (408, 409, 429) or error.status_code >= 500)


class ChatClient:
    """Chat completions from one endpoint; thread-safe (one HTTP client shared by a pool's threads)."""

    def __init__(self, base_url: str | None, api_key: str | None = None, policy: RetryPolicy = RetryPolicy(),
                 *, sleep: Callable[[float], None] = time.sleep):
        import openai

        self.base_url = base_url
        self.policy = policy
        self._sleep = sleep
        # Local servers accept any key, but the SDK insists on one.
        key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self._client = openai.OpenAI(base_url=base_url, api_key=key, timeout=policy.timeout_s, max_retries=0)

    def create(self, **request: Any):
        """One chat completion (`chat.completions.create` arguments), tried as the policy says."""
        import openai

        where = self.base_url or "the OpenAI API"
        for attempt in range(1, self.policy.attempts + 1):
            try:
                return self._client.chat.completions.create(**request)
            except openai.OpenAIError as error:
                if not retryable(error):
                    raise EndpointError(f"{where}: {type(error).__name__}: {error}") from error
                if attempt == self.policy.attempts:
                    raise EndpointError(f"{where}: gave up after {attempt} attempts: "
                                        f"{type(error).__name__}: {error}") from error
                self._sleep(self.policy.wait(attempt))
        raise AssertionError("unreachable")

    def chat(self, model: str, messages: list[dict], sampling: Sampling, **extra: Any):
        """A completion decoded with the kit's `Sampling` (a None seed is not sent)."""
        seed = {} if sampling.seed is None else {"seed": sampling.seed}
        return self.create(model=model, messages=messages, max_tokens=sampling.max_new_tokens,
                           temperature=sampling.temperature, top_p=sampling.top_p, **seed, **extra)
