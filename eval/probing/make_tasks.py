"""Make probing task folders: the kit's offline synthetic tasks, or real sets through Hugging Face.

    python -m lalm.eval.probing.make_tasks --tasks synthetic --out tasks/          # all synthetic tasks
    python -m lalm.eval.probing.make_tasks --tasks gender,keyword --out tasks/ --size 400
    python -m lalm.eval.probing.make_tasks --tasks hf:esc50 --hf-path /data/esc50 --out tasks/

Every task is a folder eval/probe.py reads (task.json + manifest.jsonl + clips/); a finished one is
reused, an interrupted one resumes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lalm.errors import UserError, run_command
from lalm.eval.probing import synthetic


def resolve_tasks(names: list[str], out_dir: str | Path, size: int | None = None, seed: int = 0,
                  hf_path: str | None = None) -> list[Path]:
    """Task folders for `names`: a folder as it is, `synthetic` as every synthetic task, a synthetic
    task's name, or `hf:PRESET` (from `hf_path`, a local copy, or the hub); made under out_dir."""
    folders: list[Path] = []
    for name in names:
        if (Path(name) / "task.json").is_file():
            folders.append(Path(name))
        elif name == "synthetic":
            folders += [synthetic.make_task(n, out_dir, size, seed) for n in synthetic.SYNTHETIC]
        elif name.startswith("hf:"):
            from lalm.eval.probing.hf_sets import make_preset

            folders.append(make_preset(name.removeprefix("hf:"), out_dir, hf_path, seed))
        elif name in synthetic.SYNTHETIC:
            folders.append(synthetic.make_task(name, out_dir, size, seed))
        else:
            raise UserError(f"--tasks: {name!r} is not a task folder, 'synthetic', hf:PRESET or one of "
                            f"{', '.join(synthetic.SYNTHETIC)}")
    return folders


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lalm.eval.probing.make_tasks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", required=True,
                   help=f"comma-separated: synthetic (all), {', '.join(synthetic.SYNTHETIC)}, hf:PRESET")
    p.add_argument("--out", required=True, help="folder the task folders go in")
    p.add_argument("--size", type=int, help=f"clips per synthetic task (default: {synthetic.DEFAULT_SIZE})")
    p.add_argument("--seed", type=int, default=0, help="what is said, by whom, and the splits (default: 0)")
    p.add_argument("--hf-path", help="with hf:PRESET: a local copy of the dataset (load_from_disk or a folder)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = [n.strip() for n in args.tasks.split(",") if n.strip()]
    for folder in resolve_tasks(names, args.out, args.size, args.seed, args.hf_path):
        print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
