"""SIFT target generation: the frozen chat LLM answers each transcript; the answer is the audio's target.

    python -m data_gen.sift --asr-manifest train.jsonl --out sift.jsonl --llm Qwen/Qwen2.5-7B-Instruct \
        --mode sift_sp --backend vllm --batch-size 1024

The run is resumable (rerun the same command), shardable (`--shard I/N`, then `python -m data_gen.merge`)
and never stops for a bad row: those go to `<out>.rejects.jsonl`. See docs/data_gen.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lalm import console
from lalm.data_gen.backends import BackendOptions, backend_class, generation_record
from lalm.data_gen.backends.hf import RANDOM_PREFIX
from lalm.data_gen.batching import length_sorted_batches
from lalm.data_gen.cli import HelpFormatter
from lalm.data_gen.meta import load_meta_map
from lalm.data_gen.rows import Reject, Row, Shard, check_row, identify, list_rejects
from lalm.data_gen.sources import Record, hf_records, jsonl_records, lhotse_records
from lalm.data_gen.store import sidecar
from lalm.data_gen.templates import (
    DEFAULT_INSTRUCTIONS,
    MODES,
    SYSTEM_PROMPTS,
    USER_TEMPLATES,
    Prompt,
    pick_instruction,
    render,
    template_record,
)
from lalm.errors import run_command
from lalm.generation import Sampling
from lalm.jsonl import appending, iter_jsonl, repair_tail, write_json_atomic, write_jsonl_atomic
from lalm.paths import path_problem

#: Output fields that must match for a rerun to continue an existing output file.
SETTINGS = ("mode", "llm", "template", "generation")


@dataclass
class Tally:
    """What a run has seen so far; becomes the summary."""

    rejects: list[Reject] = field(default_factory=list)
    valid: int = 0
    done_before: int = 0
    generated: int = 0
    tokens: int = 0
    truncated: int = 0


@dataclass(frozen=True)
class Job:
    row: Row
    prompt: Prompt

    @property
    def length(self) -> int:
        return sum(len(m["content"]) for m in self.prompt.messages)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m data_gen.sift",
        description="Answer every transcript of an ASR corpus with the frozen chat LLM; the answers become the "
                    "training targets of the audio (SIFT). Writes OUT (JSONL), OUT.rejects.jsonl and "
                    "OUT.summary.json (OUT without .jsonl). Rerunning the same command resumes.",
        formatter_class=HelpFormatter,
    )
    src = p.add_argument_group("input (exactly one)")
    one = src.add_mutually_exclusive_group(required=True)
    one.add_argument("--asr-manifest", help="JSONL manifest: one {id, audio, text, duration?, meta?} per line; "
                                            "relative audio paths resolve against the manifest's folder")
    one.add_argument("--lhotse-cuts", help="Lhotse cut manifest (.jsonl or .jsonl.gz); needs lhotse installed")
    one.add_argument("--hf-dataset", help="Hugging Face dataset: hub name, local data folder, or save_to_disk folder")
    src.add_argument("--hf-config", help="dataset configuration (subset) name, for --hf-dataset")
    src.add_argument("--hf-split", default="train", help="dataset split, for --hf-dataset")
    src.add_argument("--hf-columns", help="FIELD=COLUMN pairs mapping dataset columns to row fields, e.g. "
                                          "'id=utt_id,text=sentence,audio=path,meta.gender=sex'; FIELD is id, text, "
                                          "audio, duration or meta.NAME; same-named columns map by default; without "
                                          "an id column the row index is the id")
    src.add_argument("--meta-map", help="yaml file extending the metadata table of data_gen/meta.py: "
                                        "{field: {raw label: canonical label}}")
    src.add_argument("--decode-audio", action="store_true",
                     help="decode every clip fully to check it (default: read only the file header)")

    gen = p.add_argument_group("prompting")
    gen.add_argument("--mode", choices=MODES, default="sift_s",
                     help="sift_s: the transcript alone; sift_sp: transcript + '(metadata labels)'; "
                          "sit_sp: sift_sp + an instruction that is stored with the row")
    gen.add_argument("--system-prompt", choices=list(SYSTEM_PROMPTS), default="none",
                     help="'hear' adds a system prompt asking the LLM to answer as if it heard the speaker; "
                          "'none' keeps the chat template's default")
    gen.add_argument("--instruction", action="append",
                     help="instruction of the sit_sp mode; repeat for several (each row takes one by a hash of "
                          f"its id); default: {DEFAULT_INSTRUCTIONS[0]!r}")

    llm = p.add_argument_group("LLM and decoding")
    llm.add_argument("--llm", required=True,
                     help="hub id, local folder, .gguf file or pkg: path (hf, vllm); model name (openai); "
                          "'random:tiny' is a random test LLM (hf only)")
    llm.add_argument("--backend", choices=["hf", "vllm", "openai"], default="hf",
                     help="hf: transformers on this machine; vllm: vLLM offline engine; "
                          "openai: an OpenAI-compatible endpoint")
    llm.add_argument("--batch-size", type=int, default=16,
                     help="conversations per generation call, and per write to OUT (a kill loses at most one)")
    llm.add_argument("--sort-window", type=int, default=1024,
                     help="rows are sorted by prompt length within windows of this many rows, to cut padding")
    llm.add_argument("--max-new-tokens", type=int, default=512, help="answer length limit; longer answers are "
                                                                     "cut and marked truncated")
    llm.add_argument("--temperature", type=float, default=0.0, help="sampling temperature; 0 is greedy decoding")
    llm.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (with --temperature > 0)")
    llm.add_argument("--seed", type=int, default=0, help="sampling seed")
    llm.add_argument("--dtype", choices=["float32", "bfloat16", "float16"],
                     help="weight dtype; default float32 for hf (use bfloat16 on GPUs), auto for vllm")
    llm.add_argument("--device", help="hf: torch device, e.g. cuda:1 (default: cuda if available, else cpu)")
    llm.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm: GPUs per model")
    llm.add_argument("--tokenizer", help="vllm: tokenizer (hub id or folder) to use with a .gguf --llm")
    llm.add_argument("--base-url", help="openai: endpoint URL, e.g. http://localhost:8000/v1")
    llm.add_argument("--api-key", help="openai: API key (default: $OPENAI_API_KEY)")
    llm.add_argument("--concurrency", type=int, default=8, help="openai: requests in flight at once")
    llm.add_argument("--timeout", type=float, default=120.0, help="openai: seconds before a request times out")
    llm.add_argument("--max-retries", type=int, default=5,
                     help="openai: retries of a request after connection errors, timeouts, 429 or 5xx")
    llm.add_argument("--retry-delay", type=float, default=1.0,
                     help="openai: seconds before the first retry; doubled at each further retry")

    out = p.add_argument_group("output")
    out.add_argument("--out", required=True, help="output JSONL; appended to, so a rerun resumes")
    out.add_argument("--shard", help="I/N: process only shard I (from 0) of N: the manifest lines n with "
                                     "(n - 1) mod N == I; join the shard outputs with python -m data_gen.merge")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: run(args), (ValueError, ImportError, OSError))


def run(args: argparse.Namespace) -> dict:
    """Check the rows, skip those already answered, answer the rest in batches; returns the summary."""
    started = time.monotonic()
    if args.llm.startswith(RANDOM_PREFIX) and args.backend != "hf":
        raise ValueError(f"--llm {args.llm} is a random test LLM of the hf backend, not of {args.backend}")
    if args.instruction and "{instruction}" not in USER_TEMPLATES[args.mode]:
        raise ValueError(f"--instruction is used by sit modes only, not {args.mode}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shard = Shard.parse(args.shard)
    sampling = Sampling(args.max_new_tokens, args.temperature, args.top_p, args.seed)
    options = BackendOptions(
        dtype=args.dtype, device=args.device, tensor_parallel_size=args.tensor_parallel_size,
        tokenizer=args.tokenizer, base_url=args.base_url, api_key=args.api_key, concurrency=args.concurrency,
        timeout=args.timeout, max_retries=args.max_retries, retry_delay=args.retry_delay,
    )
    settings = {
        "mode": args.mode,
        "llm": args.llm,
        "template": template_record(args.mode, args.system_prompt),
        "generation": generation_record(args.backend, sampling, options),
    }
    # A summary on disk means "this run finished"; an interrupted run must not leave an old one behind.
    sidecar(out, "summary.json").unlink(missing_ok=True)
    done = finished_ids(out, settings)
    tally = Tally()
    jobs = new_jobs(args, shard, done, tally)
    backend = None
    with appending(out) as write, console.progress(desc="generating", unit="row") as bar:
        for batch in length_sorted_batches(jobs, lambda job: job.length, args.batch_size, args.sort_window):
            # Loaded at the first batch, so a rerun with nothing left to do loads no model.
            backend = backend or backend_class(args.backend)(args.llm, sampling, options)
            answers = backend.generate([job.prompt.messages for job in batch])
            write(
                {**job.row.fields, "response": answer.text, "response_tokens": answer.tokens,
                 "truncated": answer.truncated, "instruction": job.prompt.instruction,
                 "llm_input": job.prompt.messages, **settings}
                for job, answer in zip(batch, answers)
            )
            tally.generated += len(batch)
            tally.tokens += sum(a.tokens for a in answers)
            tally.truncated += sum(a.truncated for a in answers)
            bar.update(len(batch))
            bar.set_postfix(tok_s=f"{tally.tokens / max(bar.format_dict['elapsed'], 1e-9):.1f}",
                            done_before=tally.done_before, rejects=len(tally.rejects), refresh=False)
    list_rejects(tally.rejects, args.asr_manifest or args.lhotse_cuts or args.hf_dataset)
    if backend is None:  # nothing was left to generate (all done, or every row rejected): --llm unused so far
        check_llm(args)
    write_jsonl_atomic(sidecar(out, "rejects.jsonl"), (r.to_json() for r in tally.rejects))
    return finish(args, out, shard, settings, tally, len(done), time.monotonic() - started)


def check_llm(args: argparse.Namespace) -> None:
    """A ValueError when --llm (with its backend's settings) cannot name a model, checked without
    loading one: a run that loads none must not pass a typo in --llm as a success."""
    if args.backend == "openai":
        if not args.base_url:
            raise ValueError("the openai backend needs --base-url, e.g. http://localhost:8000/v1")
    elif not args.llm.startswith(RANDOM_PREFIX) and (problem := path_problem(args.llm)):
        raise ValueError(f"--llm {problem}")


def finish(args: argparse.Namespace, out: Path, shard: Shard, settings: dict, tally: Tally, done_before_run: int,
           seconds: float) -> dict:
    """Write and print the run's summary (its presence on disk means the run finished); returns it."""
    summary = {
        "output": str(out),
        "shard": str(shard),
        "source": source_name(args),
        **settings,
        "rows": tally.valid + len(tally.rejects),
        "valid": tally.valid,
        "rejects": len(tally.rejects),
        "reject_reasons": dict(Counter(r.reason.split(":", 1)[0] for r in tally.rejects)),
        "done_before": tally.done_before,
        "generated": tally.generated,
        "outputs": done_before_run + tally.generated,
        "truncated": tally.truncated,
        "tokens": tally.tokens,
        "seconds": round(seconds, 3),
        "rows_per_s": round(tally.generated / seconds, 3),
        "tokens_per_s": round(tally.tokens / seconds, 3),
    }
    write_json_atomic(sidecar(out, "summary.json"), summary)
    reasons = ", ".join(f"{k}: {v}" for k, v in summary["reject_reasons"].items())
    print(f"sift shard {shard}: {summary['rows']} rows, {summary['valid']} valid, {summary['rejects']} rejects"
          f"{f' ({reasons})' if reasons else ''}; {summary['done_before']} done before, "
          f"{summary['generated']} generated ({summary['truncated']} truncated); {summary['tokens']} tokens "
          f"in {seconds:.1f} s ({summary['tokens_per_s']:.1f} tok/s)\n"
          f"  output {out}, rejects {sidecar(out, 'rejects.jsonl')}, summary {sidecar(out, 'summary.json')}")
    return summary


def new_jobs(args: argparse.Namespace, shard: Shard, done: set[str], tally: Tally) -> Iterator[Job]:
    """The shard's usable rows not in `done`, with their prompts, read lazily in manifest order.

    Rows already done are counted, not re-checked, so a resumed run does not probe their audio again.
    """
    normaliser = load_meta_map(args.meta_map)
    instructions = tuple(args.instruction or DEFAULT_INSTRUCTIONS)
    for item in identify(open_source(args, shard), shard):
        if isinstance(item, Reject):
            tally.rejects.append(item)
            continue
        record, row_id = item
        if row_id in done:
            tally.done_before += 1
            tally.valid += 1
            continue
        row = check_row(record, row_id, normaliser, args.decode_audio)
        if isinstance(row, Reject):
            tally.rejects.append(row)
            continue
        tally.valid += 1
        instruction = pick_instruction(instructions, row_id)
        yield Job(row, render(args.mode, row.transcript, row.labels, args.system_prompt, instruction))


def finished_ids(out: Path, settings: dict) -> set[str]:
    """Ids already in `out`, after cutting a torn last line; refuses rows made with other settings."""
    dropped = repair_tail(out)
    if dropped:
        console.note(f"cut a torn last line ({dropped} bytes) from {out}, left by an interrupted run")
    if not out.exists():
        return set()
    done = set()
    for row in iter_jsonl(out):
        changed = [key for key in SETTINGS if row.get(key) != settings[key]]
        if changed:
            raise ValueError(f"{out} holds rows made with a different {', '.join(changed)} (row {row.get('id')!r}); "
                             "write to another --out or delete it")
        done.add(str(row["id"]))
    return done


def open_source(args: argparse.Namespace, shard: Shard) -> Iterator[Record]:
    if args.asr_manifest:
        return jsonl_records(args.asr_manifest)
    if args.lhotse_cuts:
        return lhotse_records(args.lhotse_cuts)
    return hf_records(args.hf_dataset, args.hf_config, args.hf_split, args.hf_columns, sidecar(args.out, "audio"),
                      shard.owns)


def source_name(args: argparse.Namespace) -> str:
    """The input as recorded in the summary (and listed by merge, since mount points differ across machines)."""
    if args.asr_manifest:
        return f"asr-manifest:{Path(args.asr_manifest).absolute()}"
    if args.lhotse_cuts:
        return f"lhotse-cuts:{Path(args.lhotse_cuts).absolute()}"
    return f"hf-dataset:{args.hf_dataset}:{args.hf_config or ''}:{args.hf_split}"


if __name__ == "__main__":
    sys.exit(main())
