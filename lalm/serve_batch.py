"""Batching concurrent chat requests into one generation call, on the one thread that owns the model.

HTTP threads only parse and wait; a single worker thread runs the model, because a model is not
safe to call from several threads and a device runs one batch at a time anyway. When the worker is
idle, the first request waits up to `window` seconds for company; requests that arrive while a
batch runs are taken together by the next one, so under load batches fill without any waiting.
A batch holds up to `max_batch` requests with equal sampling settings (one `generate` call takes
one temperature and top-p); their `max_tokens` and stop sequences may differ, and streamed requests
batch with the others (each row streams on its own). A request is measured against the context in
its own thread before it is queued, and a batch whose call fails is retried row by row, so one bad
request fails alone and never its batch.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Protocol

from jinja2 import TemplateError

from lalm.model import LALM
from lalm.serve_api import APIError, ChatRequest, Completion
from lalm.streaming import Row, generate_rows

log = logging.getLogger("lalm.serve")


class ClientGone(ConnectionError):
    """The client of a job closed its connection while the job waited or generated."""


class Job:
    """One request in flight: the worker writes text deltas and the result; the HTTP thread reads them.
    `prompt_tokens` is the rendered prompt's length, measured (and checked) before the job was queued."""

    def __init__(self, request: ChatRequest, prompt_tokens: int = 0):
        self.request = request
        self.prompt_tokens = prompt_tokens
        self.cancelled = threading.Event()  # the client went away: stop generating its row
        self.settled = False  # finished or failed
        self.sent_text = False  # a delta went out: the row can no longer be retried from scratch
        self._events: queue.Queue[str | Completion | APIError] = queue.Queue()

    def text(self, delta: str) -> None:
        self.sent_text = True
        self._events.put(delta)

    def finish(self, completion: Completion) -> None:
        self.settled = True
        self._events.put(completion)

    def fail(self, error: APIError) -> None:
        self.settled = True
        self._events.put(error)

    def events(self, connected: Callable[[], bool] = lambda: True, poll: float = 0.25) -> Iterator[str | Completion]:
        """Text deltas (streamed requests only), then the Completion; raises the APIError of a failure.
        While nothing arrives, `connected` is asked every `poll` seconds whether the client is still
        there; when it is not, the row is cancelled and ClientGone raised, as a failed write would."""
        while True:
            try:
                event = self._events.get(timeout=poll)
            except queue.Empty:
                if not connected():
                    self.cancelled.set()
                    raise ClientGone("the client closed the connection") from None
                continue
            if isinstance(event, APIError):
                raise event
            yield event
            if isinstance(event, Completion):
                return

    def result(self, connected: Callable[[], bool] = lambda: True) -> Completion:
        *_, done = self.events(connected)
        return done


class Backend(Protocol):
    """Measures a request's prompt before it is queued (`admit`), and runs one batch (`run`): every job
    ends with `finish` or `fail`. All jobs of a batch share one sampling batch key."""

    def admit(self, request: ChatRequest, max_prompt_tokens: int | None = None) -> int: ...

    def run(self, jobs: list[Job]) -> None: ...


def admit(model: LALM, request: ChatRequest, context: int | None, max_prompt_tokens: int | None = None) -> int:
    """The prompt's length in tokens (audio positions included: OpenAI's `prompt_tokens`), or an
    APIError if it does not render or fit. Called in the request's own thread, before it joins a
    batch, so a prompt that cannot be encoded fails alone and costs the model thread nothing."""
    try:
        # A model that reads content (a transcript in its prompt) encodes the clips here, in the request's
        # own thread; the encoded clips go on with the request, so the model thread does not redo them.
        encoded, request.audio = model.encode_prompt(request.conversation, request.audio)
        length = len(encoded.input_ids)
    except (ValueError, TypeError, TemplateError) as err:  # the processor, tokenizer, or chat template
        raise APIError(400, f"the conversation cannot be rendered: {err}", "messages") from err
    if max_prompt_tokens is not None and length > max_prompt_tokens:
        raise APIError(400, f"the prompt is {length:,} tokens (audio included), over this server's limit of "
                       f"{max_prompt_tokens:,} (--max-prompt-tokens)", "messages", "prompt_too_long")
    check_context(length, request.sampling.max_new_tokens, context)
    return length


def check_context(length: int, max_new_tokens: int, context: int | None) -> None:
    """An APIError when a prompt of `length` tokens and its answer do not fit the model's `context`
    (the server's check, and the terminal chat's, with the same message)."""
    if context and length + max_new_tokens > context:
        raise APIError(400, f"the prompt is {length} tokens (audio included) and max_tokens is "
                       f"{max_new_tokens}: over the model's context of {context}",
                       "messages", "context_length_exceeded")


class HFBackend:
    """Generation with the kit's own model (`LALM.generate_batch`), streaming row by row."""

    def __init__(self, model: LALM):
        self.model = model
        self.context = getattr(model.llm.config, "max_position_embeddings", None)

    def admit(self, request: ChatRequest, max_prompt_tokens: int | None = None) -> int:
        return admit(self.model, request, self.context, max_prompt_tokens)

    def run(self, jobs: list[Job]) -> None:
        rows = [Row(job.request.sampling.max_new_tokens, job.text if job.request.stream else None, job.cancelled.is_set,
                    job.request.stop) for job in jobs]
        texts = generate_rows(self.model, [job.request.conversation for job in jobs],
                              [job.request.audio for job in jobs], rows, jobs[0].request.sampling)
        for job, row, text in zip(jobs, rows, texts):
            job.finish(Completion(text, job.prompt_tokens, len(row.token_ids), row.finish_reason))


class BatchWorker:
    """The model's thread: takes jobs from a queue, groups them into batches, runs the backend."""

    def __init__(self, backend: Backend, max_batch: int = 8, window: float = 0.02):
        self.backend = backend
        self.max_batch = max_batch
        self.window = window
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._waiting: deque[Job] = deque()  # taken from the queue but not batchable with the last batch
        self._thread = threading.Thread(target=self._loop, name="lalm-batch-worker", daemon=True)

    def start(self) -> BatchWorker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def submit(self, request: ChatRequest, max_prompt_tokens: int | None = None) -> Job:
        """Queue a request; raises its APIError here, in the caller's thread, if the backend refuses it."""
        job = Job(request, self.backend.admit(request, max_prompt_tokens))
        self._queue.put(job)
        return job

    def next_batch(self) -> list[Job] | None:
        """The oldest job and up to `max_batch - 1` more with its sampling key; None means stop."""
        first = self._waiting.popleft() if self._waiting else self._queue.get()
        if first is None:
            return None
        key = first.request.sampling.batch_key
        batch = [job for job in self._waiting if job.request.sampling.batch_key == key][: self.max_batch - 1]
        self._waiting = deque(job for job in self._waiting if job not in batch)
        batch.insert(0, first)
        deadline = time.monotonic() + self.window
        while len(batch) < self.max_batch:
            try:  # past the deadline this still takes jobs already queued
                job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                self._queue.put(None)  # stop after this batch
                break
            (batch if job.request.sampling.batch_key == key else self._waiting).append(job)
        return batch

    def _loop(self) -> None:
        while (batch := self.next_batch()) is not None:
            batch = [job for job in batch if not job.cancelled.is_set()]  # their clients left while queued
            if not batch:
                continue
            start = time.perf_counter()
            self._run(batch)
            log.info("batch of %d request(s) in %.2f s", len(batch), time.perf_counter() - start)

    def _run(self, batch: list[Job]) -> None:
        try:
            self.backend.run(batch)
        except Exception as err:  # a failed batch fails its requests, not the server
            log.exception("generation failed for a batch of %d", len(batch))
            pending = [job for job in batch if not job.settled]
            if len(batch) == 1:
                for job in pending:
                    job.fail(APIError(500, f"generation failed: {type(err).__name__}: {err}", code="generation_failed"))
                return
            # Which row broke the call is unknown: each runs again alone, so only a row that fails by
            # itself fails. A row that already streamed text cannot start over and fails now.
            for job in pending:
                if job.sent_text:
                    job.fail(APIError(500, f"generation failed: {type(err).__name__}: {err}", code="generation_failed"))
                elif not job.cancelled.is_set():
                    self._run([job])
