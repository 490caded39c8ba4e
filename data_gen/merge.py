"""Join the outputs of a sharded SIFT run into one file, after checking that nothing is missing or doubled.

    python -m data_gen.merge --out sift.jsonl sift.0.jsonl sift.1.jsonl sift.2.jsonl sift.3.jsonl

Each shard output must come with the summary that only a finished run writes (`<shard>.summary.json`,
removed when a rerun starts): it says which shard of how many the file holds and how many rows it has.
The merge refuses unless the summaries cover shards 0..N-1 exactly once, were made with the same
settings, match their files, and no id appears twice. Outputs and
rejects are then concatenated and written atomically, with a merged summary.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from lalm.data_gen.sift import SETTINGS
from lalm.data_gen.store import sidecar
from lalm.errors import run_command
from lalm.jsonl import atomic_open, iter_jsonl, iter_lines, write_json_atomic, write_jsonl_atomic

#: Summary counts that add up over shards.
COUNTS = ("rows", "valid", "rejects", "done_before", "generated", "outputs", "truncated", "tokens")


def merge(shard_outputs: list[Path], out: Path) -> dict:
    """Check the shards and write `out`, its rejects and its summary; returns the merged summary."""
    summaries = [_summary(path) for path in shard_outputs]
    _check_cover(summaries)
    seen: set[str] = set()
    for path, summary in zip(shard_outputs, summaries):
        count = 0
        for row in iter_jsonl(path):
            if str(row["id"]) in seen:
                raise ValueError(f"{path}: id {row['id']!r} appears in more than one row")
            seen.add(str(row["id"]))
            count += 1
        if count != summary["outputs"]:
            raise ValueError(f"{path}: {count} rows but its summary says {summary['outputs']}; rerun that shard")
    # Checked; now copy the lines as they are, streaming, into files that appear only when complete.
    with atomic_open(out) as f:
        for path in shard_outputs:
            f.writelines(line for _, line in iter_lines(path))
    write_jsonl_atomic(sidecar(out, "rejects.jsonl"),
                       (r for path in shard_outputs for r in iter_jsonl(sidecar(path, "rejects.jsonl"))))
    merged = {key: summaries[0][key] for key in SETTINGS}
    merged.update({key: sum(s[key] for s in summaries) for key in COUNTS})
    merged.update(output=str(out), shards=len(summaries), sources=sorted({s["source"] for s in summaries}))
    write_json_atomic(sidecar(out, "summary.json"), merged)
    return merged


def _summary(output: Path) -> dict:
    path = sidecar(output, "summary.json")
    if not path.exists():
        raise ValueError(f"{output}: no {path.name}; that shard has not finished (rerun its command)")
    return json.loads(path.read_text())


def _check_cover(summaries: list[dict]) -> None:
    """The summaries must be shards 0..N-1 of one N, each once, all with the same settings."""
    shards = [tuple(map(int, s["shard"].split("/"))) for s in summaries]
    counts = {n for _, n in shards}
    if len(counts) != 1:
        raise ValueError(f"the outputs come from different shard counts: {sorted(counts)}")
    (count,) = counts
    indices = Counter(i for i, _ in shards)
    missing = sorted(set(range(count)) - set(indices))
    doubled = sorted(i for i, n in indices.items() if n > 1)
    if missing or doubled:
        raise ValueError(f"shards of {count}: missing {missing or 'none'}, given twice {doubled or 'none'}")
    for key in SETTINGS:
        values = {str(s[key]) for s in summaries}
        if len(values) > 1:
            raise ValueError(f"the shards differ in {key}: {sorted(values)}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m data_gen.merge",
        description="Join the outputs of a sharded `python -m data_gen.sift --shard I/N` run, checking that "
                    "every shard finished, none is missing or given twice, and no id is doubled.",
    )
    p.add_argument("shards", nargs="+", type=Path, help="the shard outputs (the --out of each shard's run)")
    p.add_argument("--out", required=True, type=Path,
                   help="merged output JSONL; OUT.rejects.jsonl and OUT.summary.json are written beside it")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def job() -> None:
        summary = merge(args.shards, args.out)
        print(f"merged {summary['shards']} shards: {summary['outputs']} rows, {summary['rejects']} rejects -> {args.out}")

    return run_command(job, (ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())
