"""The OpenAI-compatible backend: chat completions from any server that speaks the OpenAI API.

Requests of a batch run in a bounded thread pool, through the kit's one client (`lalm.openai_client`):
transient failures are retried with exponential backoff; anything else (a 400 for a prompt the server
rejects), or a request out of attempts, stops the run with the server's message, and a rerun resumes
where it stopped.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait

from lalm.data_gen.backends import BACKENDS, Answer, Backend, BackendOptions
from lalm.generation import Sampling
from lalm.openai_client import ChatClient, RetryPolicy


@BACKENDS.register("openai")
class OpenAIBackend(Backend):
    def __init__(self, llm: str, sampling: Sampling, options: BackendOptions):
        super().__init__(llm, sampling, options)
        if not options.base_url:
            raise ValueError("the openai backend needs --base-url, e.g. http://localhost:8000/v1")
        policy = RetryPolicy(attempts=options.max_retries + 1, backoff_s=options.retry_delay, timeout_s=options.timeout)
        self.client = ChatClient(options.base_url, options.api_key, policy)
        self.pool = ThreadPoolExecutor(max_workers=options.concurrency)

    def generate(self, conversations: list[list[dict[str, str]]]) -> list[Answer]:
        futures = [self.pool.submit(self._complete, messages) for messages in conversations]
        # Every request ends (answered or out of retries) before a failure is raised, so none is left
        # running in the background of a stopped run.
        wait(futures)
        return [future.result() for future in futures]

    def _complete(self, messages: list[dict[str, str]]) -> Answer:
        response = self.client.chat(self.llm, messages, self.sampling)
        choice = response.choices[0]
        tokens = response.usage.completion_tokens if response.usage else 0
        return Answer((choice.message.content or "").strip(), tokens, choice.finish_reason == "length")
