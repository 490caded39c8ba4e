"""Per-row streaming, token limits and finish reasons for one `LALM.generate_batch` call.

Hugging Face `generate` hands each step's new tokens (one per row) to a streamer and asks its
stopping criteria which rows are done. `RowStreamer` is both, so one batched call can serve rows
with different token limits and stop sequences, stream some rows while others only wait for the
end, drop a row whose client went away, and say per row how many tokens it produced and why it
stopped (OpenAI's `usage` and `finish_reason`), which the decoded strings of `generate_batch`
cannot tell.
The chat CLI and the server both generate through `generate_rows`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from lalm.generation import Sampling, end_of_turn_ids

if TYPE_CHECKING:
    from lalm.model import LALM, AudioInput
    from lalm.processor import Conversation

#: A decoded tail ending in U+FFFD is an incomplete UTF-8 character: wait for the next token.
INCOMPLETE = "\ufffd"


def find_stop(text: str, stop: Sequence[str]) -> int | None:
    """Where the earliest stop sequence starts in `text` (the answer ends there), or None."""
    found = [i for i in (text.find(s) for s in stop) if i >= 0]
    return min(found) if found else None


@dataclass
class Row:
    """One answer being generated. `on_text` receives text deltas as they decode; None: no streaming.
    The answer ends before the first of the `stop` sequences, which is not part of it (OpenAI's `stop`)."""

    limit: int
    on_text: Callable[[str], None] | None = None
    cancelled: Callable[[], bool] = lambda: False
    stop: tuple[str, ...] = ()
    token_ids: list[int] = field(default_factory=list)  # generated ids, the end-of-turn id included
    finish_reason: str | None = None  # "stop" (end-of-turn token or stop sequence) or "length" (hit `limit`)
    stop_at: int | None = None  # where a stop sequence cut the decoded text
    streamed: str = ""

    def text(self, tokenizer) -> str:
        ids = self.token_ids[:-1] if self.finish_reason == "stop" and self.stop_at is None else self.token_ids
        text = tokenizer.decode(ids, skip_special_tokens=True)
        return text if self.stop_at is None else text[: self.stop_at]

    def emit(self, text: str) -> None:
        """Send the part of `text` not streamed yet (decoding is not always prefix-stable: then hold)."""
        if self.on_text is not None and text.startswith(self.streamed) and len(text) > len(self.streamed):
            self.on_text(text[len(self.streamed):])
            self.streamed = text


class RowStreamer(BaseStreamer, StoppingCriteria):
    """Records each row's tokens (streamer side) and stops rows at their limit (criteria side)."""

    def __init__(self, tokenizer, rows: list[Row], eos_ids: list[int]):
        self.tokenizer = tokenizer
        self.rows = rows
        self.eos_ids = set(eos_ids)
        self.limits = torch.tensor([row.limit for row in rows])
        self.prompt_pending = True  # generate's first `put` is the prompt (empty with inputs_embeds)

    def put(self, value: torch.Tensor) -> None:
        if self.prompt_pending:
            self.prompt_pending = False
            return
        for row, token in zip(self.rows, value.tolist()):
            if row.finish_reason is not None:
                continue  # generate pads finished rows; those tokens are not the row's
            row.token_ids.append(token)
            if token in self.eos_ids:
                row.finish_reason = "stop"
            elif len(row.token_ids) >= row.limit:
                row.finish_reason = "length"
            if row.on_text is None and not row.stop:
                continue
            text = row.text(self.tokenizer)
            if row.stop and (cut := find_stop(text, row.stop)) is not None:
                row.stop_at, row.finish_reason = cut, "stop"
                row.emit(text[:cut])
            elif row.finish_reason is not None:
                row.emit(text)
            elif not text.endswith(INCOMPLETE):
                # A tail that may still grow into a stop sequence is held back (as vLLM does).
                hold = max(len(s) for s in row.stop) - 1 if row.stop else 0
                row.emit(text[: max(0, len(text) - hold)])

    def end(self) -> None:
        for row in self.rows:
            row.finish_reason = row.finish_reason or "length"
            row.emit(row.text(self.tokenizer))

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.BoolTensor:
        # With inputs_embeds, generate's input_ids hold only the generated tokens. A row that `put`
        # ended (a stop sequence) or whose client went away is done too.
        done = torch.tensor([row.finish_reason is not None or row.cancelled() for row in self.rows])
        return ((input_ids.shape[1] >= self.limits) | done).to(input_ids.device)


def generate_rows(model: LALM, conversations: list[Conversation], audio: list[list[AudioInput]],
                  rows: list[Row], sampling: Sampling) -> list[str]:
    """Generate all rows in one batch (one sampling setting, per-row limits); return their texts."""
    eos = end_of_turn_ids(model.llm, model.tokenizer)
    streamer = RowStreamer(model.tokenizer, rows, eos)
    # A seeded batch draws from its own random state and leaves the process's one as it was.
    seeded = sampling.seed is not None and sampling.temperature > 0
    devices = [model.device] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, enabled=seeded):
        if seeded:
            torch.manual_seed(sampling.seed)
        model.generate_batch(
            conversations, audio, max_new_tokens=max(row.limit for row in rows), streamer=streamer,
            stopping_criteria=StoppingCriteriaList([streamer]), eos_token_id=eos, **sampling.generate_kwargs(),
        )
    # The rows' own records are authoritative: generate's output does not know the per-row limits.
    return [row.text(model.tokenizer) for row in rows]
