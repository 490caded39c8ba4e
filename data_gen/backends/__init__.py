"""Generation backends behind one interface: a list of chat conversations in, one Answer per conversation out.

- `hf`: transformers on this machine (CPU or one GPU), left-padded batches with a KV cache.
- `vllm`: vLLM's offline engine (GPUs, tensor parallel); an optional extra, imported only when chosen.
- `openai`: any OpenAI-compatible chat endpoint (vLLM/SGLang/llama.cpp servers, hosted APIs).

Decoding is greedy unless a temperature is given. Every parameter that changes the answers is
returned by `generation_record` and stored in each output row, so a resumed run can refuse to mix
answers made with different settings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass

from lalm.generation import Sampling
from lalm.registry import Registry


@dataclass(frozen=True)
class BackendOptions:
    """Backend-specific settings; each backend reads the ones it needs."""

    dtype: str | None = None
    """Weight dtype (hf, vllm); None: the backend's default."""
    device: str | None = None
    """hf: torch device; None: cuda when available, else cpu (`lalm.generation.resolve_device`)."""
    tensor_parallel_size: int = 1
    """vllm: GPUs per model."""
    tokenizer: str | None = None
    """vllm: tokenizer to use with a GGUF file (vLLM cannot take it from the GGUF)."""
    base_url: str | None = None
    """openai: endpoint, e.g. http://localhost:8000/v1."""
    api_key: str | None = None
    """openai: key; None: $OPENAI_API_KEY, else a placeholder for local servers."""
    concurrency: int = 8
    """openai: requests in flight at once."""
    timeout: float = 120.0
    """openai: seconds per request."""
    max_retries: int = 5
    """openai: retries of a failed request (connection errors, timeouts, 408/409/429, 5xx)."""
    retry_delay: float = 1.0
    """openai: first backoff in seconds; doubled at each retry, up to 30 s (`lalm.openai_client`)."""


@dataclass(frozen=True)
class Answer:
    text: str
    tokens: int
    """Generated tokens, the end-of-turn token included when one was produced."""
    truncated: bool
    """The answer hit the token limit instead of ending by itself."""


class Backend(ABC):
    """Answers chat conversations with one LLM."""

    #: dtype recorded and used when none is given.
    default_dtype: str | None = None

    def __init__(self, llm: str, sampling: Sampling, options: BackendOptions):
        self.llm = llm
        self.sampling = sampling
        self.options = options

    @abstractmethod
    def generate(self, conversations: list[list[dict[str, str]]]) -> list[Answer]:
        """One answer per conversation, in order."""


BACKENDS: Registry[Backend] = Registry("backend")


def backend_class(name: str) -> type[Backend]:
    # Importing the modules registers them; vllm and openai are imported only when their backend is built.
    from lalm.data_gen.backends import hf, openai_api, vllm_engine  # noqa: F401

    return BACKENDS.get(name)


def generation_record(name: str, sampling: Sampling, options: BackendOptions) -> dict:
    """The settings that shape the answers, known before any model loads."""
    record = {"backend": name, **asdict(sampling)}
    dtype = options.dtype or backend_class(name).default_dtype
    if dtype is not None:
        record["dtype"] = dtype
    return record
