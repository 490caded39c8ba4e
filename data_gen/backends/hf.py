"""The transformers backend: left-padded batches through `model.generate` with its KV cache.

Left padding puts every prompt's last token in the same column, so one `generate` call decodes the
whole batch in lock-step; the caller sorts prompts by length so little padding is wasted.
"""

from __future__ import annotations

import torch
from transformers import GenerationConfig

from lalm.config import LLMConfig
from lalm.data_gen.backends import BACKENDS, Answer, Backend, BackendOptions
from lalm.generation import Sampling, end_of_turn_ids, resolve_device
from lalm.llm import load_llm

RANDOM_PREFIX = "random:"
#: `--llm random:NAME`: randomly initialised LLMs with a byte-level ChatML tokenizer, built offline in
#: well under a second. Their answers are noise; they exist for tests and benchmarks.
RANDOM_LLMS: dict[str, dict] = {
    "tiny": {"model_type": "qwen2", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096},
}


def llm_config(llm: str, dtype: str) -> LLMConfig:
    """`random:tiny`, a hub id, a local folder, a `.gguf` file or a `pkg:` path -> the kit's LLMConfig."""
    if llm.startswith(RANDOM_PREFIX):
        name = llm.removeprefix(RANDOM_PREFIX)
        if name not in RANDOM_LLMS:
            raise ValueError(f"unknown random LLM {llm!r}; valid: {', '.join(RANDOM_PREFIX + n for n in RANDOM_LLMS)}")
        return LLMConfig(random_config=RANDOM_LLMS[name], seed=0, dtype=dtype)
    return LLMConfig(path=llm, dtype=dtype)


@BACKENDS.register("hf")
class HFBackend(Backend):
    default_dtype = "float32"

    def __init__(self, llm: str, sampling: Sampling, options: BackendOptions):
        super().__init__(llm, sampling, options)
        self.device = resolve_device(options.device)
        self.model, self.tokenizer = load_llm(llm_config(llm, options.dtype or self.default_dtype))
        self.model.to(self.device)
        self.tokenizer.padding_side = "left"
        self.stop_ids = set(end_of_turn_ids(self.model, self.tokenizer))
        self.config = GenerationConfig(
            max_new_tokens=sampling.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=sorted(self.stop_ids), **sampling.generate_kwargs(),
        )
        if not sampling.greedy and sampling.seed is not None:
            torch.manual_seed(sampling.seed)

    def generate(self, conversations: list[list[dict[str, str]]]) -> list[Answer]:
        texts = [self.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False)
                 for c in conversations]
        # The chat template already holds every special token the model expects.
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        with torch.inference_mode():
            out = self.model.generate(**batch, generation_config=self.config)
        return [self._answer(ids) for ids in out[:, batch["input_ids"].shape[1]:].tolist()]

    def _answer(self, ids: list[int]) -> Answer:
        end = next((i for i, t in enumerate(ids) if t in self.stop_ids), None)
        kept = ids if end is None else ids[:end]
        text = self.tokenizer.decode(kept, skip_special_tokens=True).strip()
        return Answer(text, len(ids) if end is None else end + 1, end is None)
