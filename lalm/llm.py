"""Loading the frozen chat LLM: a hub id, a local directory, a GGUF file, or a tiny random model."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import inspect
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from lalm.paths import resolve_path

if TYPE_CHECKING:
    from lalm.config import LLMConfig

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ATTENTION = ("sdpa", "eager", "flash_attention_2")

# ChatML, the format SmolLM2 and Qwen use; the random test LLM gets it too.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def load_llm(cfg: LLMConfig):
    """Return (model, tokenizer) for `cfg`, in eval mode with every parameter frozen."""
    from transformers import AutoModelForCausalLM

    dtype = DTYPES[cfg.dtype]
    tokenizer = load_tokenizer(cfg)
    if cfg.random_config is not None:
        model = build_random_llm(cfg.random_config, cfg.seed, dtype, tokenizer)
    else:
        source, gguf_file = split_gguf_path(resolve_path(cfg.path), cfg.gguf_file)
        if cfg.attn_implementation == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
            raise ImportError("llm.attn_implementation=flash_attention_2 needs flash-attn: pip install 'lalm-kit[flash]'")
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        with quiet_loading():
            model = AutoModelForCausalLM.from_pretrained(
                source, dtype=dtype, attn_implementation=cfg.attn_implementation, **extra
            )
    model.eval().requires_grad_(False)
    return model, tokenizer


@contextlib.contextmanager
def quiet_loading():
    """No progress bars while transformers loads weights: in a log file each bar update is a line, and
    a GGUF load draws hundreds (de-quantising per tensor) that bury the kit's own messages. Errors
    and warnings still print."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    gguf_bar = getattr(gguf_utils, "tqdm", None)
    hf_logging.disable_progress_bar()
    if gguf_bar is not None:  # the GGUF converter uses tqdm directly, not transformers' switch
        gguf_utils.tqdm = functools.partial(gguf_bar, disable=True)
    try:
        yield
    finally:
        if gguf_bar is not None:
            gguf_utils.tqdm = gguf_bar
        if shown:
            hf_logging.enable_progress_bar()


def load_tokenizer(cfg: LLMConfig):
    """The LLM's tokenizer alone (no weights), as the model uses it: a processor can be built from the
    config without the LLM (DataLoader workers, data tools)."""
    if cfg.random_config is not None:
        tokenizer = byte_chatml_tokenizer()
    else:
        from transformers import AutoTokenizer

        source, gguf_file = split_gguf_path(resolve_path(cfg.path), cfg.gguf_file)
        with quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(source, **({"gguf_file": gguf_file} if gguf_file else {}))
    if tokenizer.chat_template is None:
        raise ValueError(f"LLM {cfg.path!r} has no chat template; the kit needs a chat (instruct) model")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def split_gguf_path(path: str, gguf_file: str | None) -> tuple[str, str | None]:
    """`dir/model.gguf` -> (`dir`, `model.gguf`); transformers wants the folder and the file name apart."""
    if gguf_file is None and path.endswith(".gguf"):
        p = Path(path)
        return str(p.parent), p.name
    return path, gguf_file


def build_random_llm(model_config: dict, seed: int, dtype: torch.dtype, tokenizer):
    """A randomly initialised causal LM sized for `tokenizer` (the byte-level ChatML one), built offline.

    Tests and the tiny config use it. The same (config, seed) always gives the same weights, which
    is how a checkpoint of a random-base model is restored without storing the base.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    fields = dict(model_config)
    model_type = fields.pop("model_type", "qwen2")
    fields.setdefault("vocab_size", len(tokenizer))
    if fields["vocab_size"] < len(tokenizer):
        raise ValueError(f"llm.random_config.vocab_size must be at least {len(tokenizer)} (the byte tokenizer)")
    config = AutoConfig.for_model(
        model_type,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        **fields,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model


def byte_chatml_tokenizer():
    """256 byte tokens plus ChatML specials: a real tokenizer that needs no files or downloads."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>"]})
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def cached_forward(model, cache, **inputs):
    """(outputs, cache) of a forward pass that extends a KV cache (None starts one), passing the cache by
    the keyword this transformers version uses (`cache` from 5.x on, `past_key_values` before)."""
    key = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    out = model(**inputs, **{key: cache}, use_cache=True)
    new = out.get("cache") if "cache" in out else out.get("past_key_values")
    return out, new
