"""The vLLM backend: offline batched generation with vLLM's engine (GPUs, optional tensor parallelism).

vLLM schedules and pages the KV cache itself, so give it large batches (`--batch-size 1024`): each
batch is one `LLM.chat` call. Coded against vLLM's documented offline API (`LLM(...)`, `LLM.chat`,
`SamplingParams`, `CompletionOutput.finish_reason`); it is an optional extra and not exercised by the
kit's tests.
"""

from __future__ import annotations

from lalm.data_gen.backends import BACKENDS, Answer, Backend, BackendOptions
from lalm.generation import Sampling
from lalm.paths import resolve_path


@BACKENDS.register("vllm")
class VLLMBackend(Backend):
    default_dtype = "auto"

    def __init__(self, llm: str, sampling: Sampling, options: BackendOptions):
        super().__init__(llm, sampling, options)
        try:
            import vllm
        except ImportError as err:
            raise ImportError("the vllm backend needs vLLM on a GPU machine: pip install 'lalm-kit[vllm]'") from err
        self.engine = vllm.LLM(
            model=resolve_path(llm),
            tokenizer=options.tokenizer,
            tensor_parallel_size=options.tensor_parallel_size,
            dtype=options.dtype or self.default_dtype,
            seed=sampling.seed,
        )
        self.params = vllm.SamplingParams(
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_new_tokens,
            seed=sampling.seed,
        )

    def generate(self, conversations: list[list[dict[str, str]]]) -> list[Answer]:
        results = self.engine.chat(conversations, self.params, use_tqdm=False)
        return [
            Answer(out.text.strip(), len(out.token_ids), out.finish_reason == "length")
            for out in (result.outputs[0] for result in results)
        ]
