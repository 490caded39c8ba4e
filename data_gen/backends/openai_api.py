"""The OpenAI-compatible backend: chat completions from any server that speaks the OpenAI API.

Requests of a batch run in a bounded thread pool. Transient failures (connection errors, timeouts,
429, 5xx) are retried with exponential backoff; anything else (a 400 for a prompt the server rejects)
stops the run with the server's message, and a rerun resumes where it stopped.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor, wait

from lalm.data_gen.backends import BACKENDS, Answer, Backend, BackendOptions, Sampling


@BACKENDS.register("openai")
class OpenAIBackend(Backend):
    def __init__(self, llm: str, sampling: Sampling, options: BackendOptions):
        super().__init__(llm, sampling, options)
        import openai

        if not options.base_url:
            raise ValueError("the openai backend needs --base-url, e.g. http://localhost:8000/v1")
        self.retryable = (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)
        self.client = openai.OpenAI(
            base_url=options.base_url,
            # Local servers accept any key, but the client insists on one.
            api_key=options.api_key or os.environ.get("OPENAI_API_KEY") or "unused",
            timeout=options.timeout,
            max_retries=0,  # retries are ours, so their count and backoff are the documented ones
        )
        self.pool = ThreadPoolExecutor(max_workers=options.concurrency)

    def generate(self, conversations: list[list[dict[str, str]]]) -> list[Answer]:
        futures = [self.pool.submit(self._complete, messages) for messages in conversations]
        # Every request ends (answered or out of retries) before a failure is raised, so none is left
        # running in the background of a stopped run.
        wait(futures)
        return [future.result() for future in futures]

    def _complete(self, messages: list[dict[str, str]]) -> Answer:
        for attempt in range(self.options.max_retries + 1):
            try:
                response = self.client.chat.completions.create(
                    model=self.llm,
                    messages=messages,
                    max_tokens=self.sampling.max_new_tokens,
                    temperature=self.sampling.temperature,
                    top_p=self.sampling.top_p,
                    seed=self.sampling.seed,
                )
                break
            except self.retryable as err:
                if attempt == self.options.max_retries:
                    raise ConnectionError(f"{self.options.base_url}: request failed {attempt + 1} times: {err}") from err
                time.sleep(self.options.retry_delay * 2**attempt)
        choice = response.choices[0]
        tokens = response.usage.completion_tokens if response.usage else 0
        return Answer((choice.message.content or "").strip(), tokens, choice.finish_reason == "length")
