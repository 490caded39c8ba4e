"""SIFT generation with the hf backend against the memory-bandwidth floor of decoding, by batch size.

    python bench/decode_floor.py --shape small --batch-sizes 1,4,16 --new-tokens 32     # CPU: ratios
    python bench/decode_floor.py --shape 7b --batch-sizes 1,4,16,64,256,1024,2048      # GPU: + floor

The data_gen hf backend (what `python -m data_gen.sift --backend hf` runs) with a random LLM of
`--shape` (7b: Qwen2.5-7B-Instruct's shape; bf16 on a GPU, built there), answering `sift_s` prompts
made of bench.sift_generation's transcripts. Each batch size answers that many prompts in one
generate call, greedy, every answer forced to exactly `--new-tokens` tokens (random weights would stop
at random); batch size 1 is one-at-a-time. The sweep stops at the first batch size that runs out of
memory, reported as such.

Decode excludes prefill: step time = (time of N new tokens - time of 1) / (N - 1).
Floor of one decode step at batch B (conventions in bench/counting.py):
    bytes = LLM weights except the input embedding table + KV cache read, where the KV cache is
            2 x layers x kv_heads x head_dim x dtype bytes per context token, over every row's context
            (its prompt plus half the new tokens, on average)
    FLOPs = 2 x (decoder linear weights + LM head) x B + attention over each row's context
    floor = max(bytes / bandwidth, FLOPs / peak);  floor tokens/s = B / floor
"""

from __future__ import annotations

import argparse
import gc

import torch

from lalm.bench import counting, harness, shapes
from lalm.bench.sift_generation import TRANSCRIPTS
from lalm.data_gen.backends import BackendOptions, backend_class
from lalm.data_gen.backends.hf import RANDOM_LLMS
from lalm.data_gen.templates import render
from lalm.generation import Sampling


def hf_backend(shape: str, device: torch.device, dtype: str):
    """The hf backend with a random LLM of `shape`, allocated on `device` directly."""
    name = f"bench-{shape}"
    RANDOM_LLMS[name] = shapes.SHAPES[shape].llm  # the backend builds `random:NAME` from this table
    with torch.device(device):
        return backend_class("hf")(f"random:{name}", Sampling(max_new_tokens=1),
                                   BackendOptions(dtype=dtype, device=str(device)))


def answering(backend, conversations: list, tokens: int):
    """A call that answers `conversations` with exactly `tokens` new tokens each."""
    def answer():
        backend.config.max_new_tokens = backend.config.min_new_tokens = tokens
        if any(a.tokens != tokens for a in backend.generate(conversations)):
            raise RuntimeError(f"an answer is not {tokens} tokens long: the forced length did not hold")

    return answer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python bench/decode_floor.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_common_args(parser, list(shapes.SHAPES))
    parser.add_argument("--batch-sizes", default="1,4,16", help="comma-separated, increasing")
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens generated per answer")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"],
                        help="LLM weight dtype (default: bfloat16 on a GPU, float32 on a CPU)")
    return parser


def measure_batch(backend, rows: list, prompt_lens: list[int], args, device, hw) -> dict:
    """One batch size: time to the first token, time per later step, and the step's roofline floor."""
    size = len(rows)
    try:
        harness.reset_peak_memory(device)
        answering(backend, rows, 2)()  # warm-up at this batch shape
        times = harness.race({"first": answering(backend, rows, 1),
                             "all": answering(backend, rows, args.new_tokens)}, device, args.repeats)
    except torch.cuda.OutOfMemoryError as err:
        gc.collect()
        torch.cuda.empty_cache()
        return {"batch": size, "error": f"out of memory: {str(err).splitlines()[0]}"}
    first = times["first"]
    step = (times["all"] - first) / (args.new_tokens - 1)
    # The ideal step reads each row's own context: its prompt plus, on average, half its answer.
    contexts = [n + args.new_tokens / 2 for n in prompt_lens]
    flops, bytes_read = counting.decode_step_counts(backend.model, contexts)
    floor_s = counting.floor_seconds(flops, bytes_read, hw)
    return {
        "batch": size, "prompt_tokens": sum(prompt_lens) / size, "first_token_s": first,
        "step_s": step, "tokens_per_s": size / step, "bytes_per_step": bytes_read, "flops_per_step": flops,
        "floor_step_s": floor_s, "floor_tokens_per_s": size / floor_s if floor_s else None,
        "measured_over_floor": step / floor_s if floor_s else None,
        "peak_memory_gb": harness.peak_memory_gb(device),
    }


def print_results(results: list[dict]) -> None:
    single = results[0].get("tokens_per_s") if results[0]["batch"] == 1 else None
    table = []
    for r in results:
        if "error" in r:
            table.append([str(r["batch"])] + ["-"] * 8 + [r["error"]])
            continue
        table.append([
            str(r["batch"]), f"{r['prompt_tokens']:.0f}", f"{1e3 * r['step_s']:.1f}",
            f"{r['tokens_per_s']:.1f}", harness.fmt(single and r["tokens_per_s"] / single, ".2f", "x"),
            f"{r['bytes_per_step'] / 1e9:.3f}",
            harness.fmt(r["floor_step_s"] and 1e3 * r["floor_step_s"], ".2f"),
            harness.fmt(r["floor_tokens_per_s"], ".0f"), harness.fmt(r["measured_over_floor"], ".1f", "x"),
            harness.fmt(r["peak_memory_gb"], ".1f", " GB"),
        ])
    print()
    headers = ["batch", "prompt tokens", "decode step ms", "tokens/s", "vs one at a time", "GB read/step",
               "floor step ms", "floor tokens/s", "measured/floor", "peak memory"]
    harness.print_table(headers, table)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    device, hw, info = harness.start(args)
    dtype = args.dtype or ("bfloat16" if device.type == "cuda" else "float32")
    backend = hf_backend(args.shape, device, dtype)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    conversations = [render("sift_s", TRANSCRIPTS[i % len(TRANSCRIPTS)], []).messages
                     for i in range(max(sizes))]
    # Prompt lengths as the backend tokenizes them (byte-level for the random LLMs).
    texts = [backend.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False)
             for c in conversations]
    prompt_lens = [len(ids) for ids in backend.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    results = []
    for size in sizes:
        result = measure_batch(backend, conversations[:size], prompt_lens[:size], args, device, hw)
        results.append(result)
        if "error" in result:
            break
        print(f"batch {size}: {1e3 * result['step_s']:.1f} ms per decode step, "
              f"{result['tokens_per_s']:.1f} tokens/s", flush=True)
    print_results(results)
    harness.save_results(f"decode_floor_{args.shape}", {**info, "args": vars(args), "dtype": dtype,
                                                       "results": results})


if __name__ == "__main__":
    main()
