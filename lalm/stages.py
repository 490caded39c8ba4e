"""Multi-stage jobs made of the kit's own commands (the demo, the encoder benchmark): each stage's
command is printed before it runs, so a user can rerun or adapt any one of them; a finished stage
leaves a marker and is skipped on a rerun, and an interrupted one resumes, since every command does."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path


def stage(out: Path, title: str, command: list, rerun: str) -> None:
    """Run `command` once per `out`; `rerun` is the command that resumes the whole job (for the error)."""
    marker = out / ".done" / title.replace(" ", "-").replace("/", "_")
    if marker.exists():
        print(f"== {title}: done earlier")
        return
    print(f"\n== {title}")
    run(command, rerun)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def run(command: list, rerun: str) -> None:
    words = [str(c) for c in command]
    print("$ " + shlex.join(words), flush=True)
    started = time.perf_counter()
    done = subprocess.run(words, check=False)
    if done.returncode != 0:
        sys.exit(f"stage failed (exit {done.returncode}); fix the problem above and rerun `{rerun}` to resume")
    print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)
