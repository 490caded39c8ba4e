"""Serving the frozen LLM with vLLM: the kit builds the spliced prompt embeddings, vLLM generates.

Audio goes through the frozen encoders and the projectors and is scattered into the LLM's own text
embeddings exactly as in `LALM.generate_batch` (`LALM.prepare` + `LALM.embed`); each row's
unpadded prompt then goes to vLLM as `{"prompt_embeds": tensor [length, hidden]}`, with the
engine built with `enable_prompt_embeds=True`. vLLM pages the KV cache and schedules the batch.

Verified: nothing at runtime; vLLM needs a GPU machine and is not installed where this was written.
It is coded against vLLM's documented offline API (docs "Prompt Embedding Inputs";
`LLM(model, enable_prompt_embeds=True, ...)`, `LLM.generate(prompts, [SamplingParams...])`,
`RequestOutput.outputs[0].token_ids / finish_reason`). Known limits: a streamed request gets its
answer as one delta at the end (`LLM.generate` returns finished outputs); LoRA checkpoints are
refused; the kit's own copy of the LLM stays loaded for its embedding table and tokenizer.
"""

from __future__ import annotations

import torch

from lalm.llm import DTYPES, split_gguf_path
from lalm.model import LALM
from lalm.paths import resolve_path
from lalm.serve_api import ChatRequest, Completion
from lalm.serve_batch import Job, admit
from lalm.streaming import find_stop


class VLLMBackend:
    def __init__(self, model: LALM, tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.85,
                 max_model_len: int | None = None):
        try:
            import vllm
        except ImportError as err:
            raise ImportError("--backend vllm needs vLLM on a GPU machine: pip install 'lalm-kit[vllm]'") from err
        cfg = model.config.llm
        if cfg.random_config is not None:
            raise ValueError("vLLM loads weights from a hub id, folder or GGUF file; this model's LLM is random")
        if cfg.lora.enabled:
            raise ValueError("this checkpoint has LoRA adapters on the LLM, which this backend does not pass to "
                             "vLLM; serve it with --backend hf")
        source, gguf_file = split_gguf_path(resolve_path(cfg.path), cfg.gguf_file)
        self.model = model
        self.sampling_params = vllm.SamplingParams
        self.dtype = DTYPES[cfg.dtype]
        self.engine = vllm.LLM(
            model=f"{source}/{gguf_file}" if gguf_file else source,
            dtype=cfg.dtype,
            enable_prompt_embeds=True,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
        )
        self.context = max_model_len or getattr(model.llm.config, "max_position_embeddings", None)

    def admit(self, request: ChatRequest, max_prompt_tokens: int | None = None) -> int:
        return admit(self.model, request, self.context, max_prompt_tokens)

    @torch.inference_mode()
    def run(self, jobs: list[Job]) -> None:
        batch = self.model.prepare([job.request.conversation for job in jobs], [job.request.audio for job in jobs])
        embeds = self.model.embed(batch["input_ids"], batch["slots"], batch["audio"])
        real = batch["attention_mask"].bool()  # generation batches are left-padded
        prompts = [{"prompt_embeds": embeds[i][real[i]].to("cpu", self.dtype)} for i in range(len(jobs))]
        params = [
            self.sampling_params(max_tokens=job.request.sampling.max_new_tokens, temperature=job.request.sampling.temperature,
                                 top_p=job.request.sampling.top_p, seed=job.request.sampling.seed,
                                 stop=list(job.request.stop) or None)
            for job in jobs
        ]
        outputs = self.engine.generate(prompts, params, use_tqdm=False)
        for job, output in zip(jobs, outputs):
            out = output.outputs[0]
            text = self.model.tokenizer.decode(out.token_ids, skip_special_tokens=True)
            # vLLM stops at a stop sequence, but its token ids still spell it: cut as the HF path does.
            cut = find_stop(text, job.request.stop)
            text = text if cut is None else text[:cut]
            if job.request.stream and text:
                job.text(text)
            reason = "length" if out.finish_reason == "length" and cut is None else "stop"
            job.finish(Completion(text, job.prompt_tokens, len(out.token_ids), reason))
