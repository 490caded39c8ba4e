"""Step checkpoints of a training run: a loadable kit checkpoint plus the trainer's state.

`out_dir/step-0000200/` holds trained.safetensors, config.yaml, base_models.json (so
`LALM.from_pretrained` opens it), train_state.pt (optimiser, scheduler, step, data position,
RNG, skipped rows, the open metrics window) and checksums.json (the sha256 of every other file),
all written under one atomic rename. train_state.pt holds only tensors and plain values and is
read with `weights_only=True`, so loading it cannot run code.

The rename makes a kill harmless, but not a disk, a copy or a person: a file can still be cut
short, emptied or changed after it was saved. A resume therefore checks each checkpoint against its
checksums (and that it loads) before using it, and falls back to the newest intact one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
import yaml

from lalm.checkpoint import FINAL, WEIGHTS, load_trained, save_checkpoint

STATE = "train_state.pt"
CHECKSUMS = "checksums.json"
#: Temporary and displaced folders that `save_checkpoint` / `replace_dir` leave when a save is killed.
LEFTOVERS = (".step-*.tmp-*", ".step-*.old", f".{FINAL}.tmp-*", f".{FINAL}.old")


class CheckpointError(ValueError):
    """A step checkpoint that cannot be resumed from; the message names the file and what is wrong."""


def step_dir(out_dir: Path, step: int) -> Path:
    return out_dir / f"step-{step:07d}"


def save_step(out_dir: Path, step: int, model, optimizer, scheduler, counters: dict, run_config: dict,
              keep_last: int, progress: dict | None = None) -> Path:
    """Write `step-N/`; `progress` (plain values: skipped rows, the metrics window) joins the state."""

    def write_state(tmp: Path) -> None:
        state = {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "counters": counters,
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            **(progress or {}),
        }
        torch.save(state, tmp / STATE)
        (tmp / "align.yaml").write_text(yaml.safe_dump(run_config, sort_keys=False))
        # Last, over every file already written, inside the same rename: a checkpoint has checksums
        # only once it is whole.
        sums = {p.name: sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        (tmp / CHECKSUMS).write_text(json.dumps(sums, indent=2) + "\n")

    target = step_dir(out_dir, step)
    save_checkpoint(model, target, extra=write_state)
    for old in step_dirs(out_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def step_dirs(out_dir: Path) -> list[Path]:
    """Step checkpoint folders, oldest first (the zero-padded names sort by step)."""
    return sorted(p for p in out_dir.glob("step-*") if p.is_dir())


def remove_leftovers(out_dir: Path) -> list[Path]:
    """Delete the temporary folders of saves that a kill interrupted; returns what was removed.

    Only the trainer's main rank saves into `out_dir`, and it calls this before it saves anything, so
    no leftover can belong to a save still in progress.
    """
    removed = [p for pattern in LEFTOVERS for p in out_dir.glob(pattern) if p.is_dir()]
    for p in removed:
        shutil.rmtree(p, ignore_errors=True)
    return removed


def verify(directory: Path) -> None:
    """CheckpointError unless every file listed in checksums.json is there with its saved sha256.

    A checkpoint saved before checksums were recorded has no checksums.json; it is checked only by
    loading it (`load_step`), which finds a cut or emptied file but not a changed byte.
    """
    listing = directory / CHECKSUMS
    if not listing.is_file():
        return
    try:
        sums = json.loads(listing.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{listing}: unreadable checksum list ({err})") from err
    if not isinstance(sums, dict):
        raise CheckpointError(f"{listing}: not a checksum list (a JSON object of file names)")
    for name in (WEIGHTS, STATE):
        if name not in sums:
            raise CheckpointError(f"{listing}: no checksum for {name}")
    for name, expected in sums.items():
        path = directory / name
        if not path.is_file():
            raise CheckpointError(f"{path}: missing")
        if sha256(path) != expected:
            raise CheckpointError(f"{path}: sha256 differs from the one saved with it (the file was damaged "
                                  "or changed after the save)")


def load_step(directory: Path) -> tuple[dict, dict]:
    """(trained weights, trainer state) of a step checkpoint, verified; CheckpointError naming the bad file."""
    from safetensors.torch import load_file

    verify(directory)
    try:
        weights = load_file(directory / WEIGHTS)
    except Exception as err:  # safetensors raises its own error type; a missing file raises OSError
        raise CheckpointError(f"{directory / WEIGHTS}: unreadable ({type(err).__name__}: {err})") from err
    try:
        state = torch.load(directory / STATE, weights_only=True)
    except Exception as err:  # an emptied or cut file raises EOFError, RuntimeError or an unpickling error
        raise CheckpointError(f"{directory / STATE}: unreadable ({type(err).__name__}: {err or 'empty or cut short'})") from err
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"{directory / STATE}: not a trainer state")
    return weights, state


def latest_intact(out_dir: Path, report: Callable[[str], None]) -> tuple[Path, dict, dict] | None:
    """(folder, weights, state) of the newest step checkpoint that passes `load_step`, or None.

    Each damaged newer one is reported with the file at fault; the run then resumes from an older
    one (or starts over) instead of stopping, and resaves the damaged step when it gets there.
    """
    for directory in reversed(step_dirs(out_dir)):
        try:
            return (directory, *load_step(directory))
        except CheckpointError as err:
            report(f"checkpoint {directory.name} is damaged, not resuming from it: {err}")
    return None


def restore(model, optimizer, scheduler, weights: dict, state: dict) -> None:
    """Load trained weights, optimiser, scheduler and RNG of a verified step checkpoint (`load_step`)."""
    load_trained(model, weights)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng_cpu"])
    if state["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
