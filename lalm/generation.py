"""What every caller of generation shares: the decoding settings, the end-of-turn rule, the device default.

The chat CLI, the server, SIFT's backends and the evaluation harness all decode with `Sampling`, stop
at `end_of_turn_ids` and run on `resolve_device`, so a setting means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Sampling:
    """How answers are decoded."""

    max_new_tokens: int = 512
    """Tokens generated at most per answer (the end-of-turn token included)."""
    temperature: float = 0.0
    """0 means greedy decoding; above 0, sampling at that temperature."""
    top_p: float = 1.0
    """Nucleus sampling: only the most likely tokens up to this probability mass (sampling only)."""
    seed: int | None = None
    """Sampling only: the random state starts from it (per batch, so a resumed run samples as a fresh one
    would); None leaves the process's random state as it is."""

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def batch_key(self) -> tuple:
        """Rows share one `generate` call only with equal keys: it takes one temperature, top-p and
        random state (greedy rows need none, so a seed does not keep them apart)."""
        return ("greedy",) if self.greedy else ("sample", self.temperature, self.top_p, self.seed)

    def generate_kwargs(self) -> dict[str, Any]:
        """Hugging Face `generate` arguments; explicit, so a model's own defaults (some ship
        do_sample=True) never apply."""
        if self.greedy:
            return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        return {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p, "top_k": None}

    def record(self) -> dict[str, Any]:
        """The settings as stored beside results (a resumed run refuses to mix other ones)."""
        return {**asdict(self), "decoding": "greedy" if self.greedy else "sampling"}


def end_of_turn_ids(llm, tokenizer) -> list[int]:
    """The ids that end an answer: the LLM's generation config's end tokens and its tokenizer's one."""
    configured = getattr(llm.generation_config, "eos_token_id", None)
    ids = set(configured if isinstance(configured, list) else [] if configured is None else [configured])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return sorted(ids)


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``auto`` or None: the first GPU when there is one, else the CPU; any other name as given."""
    if name is None or name == "auto":
        # With an index, so it compares equal to a tensor's device (the current one: 0 unless set).
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    return torch.device(name)
