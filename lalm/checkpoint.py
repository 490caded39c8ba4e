"""A checkpoint is a directory: trained weights only (safetensors), the resolved config, base references.

Frozen base weights are never copied: the config names where they come from (hub id, directory,
GGUF file, or a random init with its seed). Nothing is unpickled, so a checkpoint from an untrusted
source cannot run code.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml
from safetensors.torch import load_file, save_file

from lalm.config import Config, config_from_dict, to_dict

WEIGHTS = "trained.safetensors"
CONFIG = "config.yaml"
BASES = "base_models.json"


def save_checkpoint(model, directory: str | Path, extra: Callable[[Path], None] | None = None) -> None:
    """Write the checkpoint to a temporary sibling, then rename it into place (a crash leaves the old one)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        state = {k: v.contiguous().cpu() for k, v in model.trained_state_dict().items()}
        save_file(state, tmp / WEIGHTS)
        (tmp / CONFIG).write_text(yaml.safe_dump(to_dict(Config(model=model.config)), sort_keys=False))
        (tmp / BASES).write_text(json.dumps(base_references(model.config), indent=2))
        if extra is not None:
            extra(tmp)  # more files (a trainer's state) land inside the same atomic rename
        replace_dir(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(new: Path, target: Path) -> None:
    """Swap `new` into `target` with renames only, so `target` is always either complete or absent."""
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def base_references(cfg) -> dict:
    def ref(c):
        return {"path": c.path, "random_config": c.random_config, "seed": c.seed}

    return {
        "encoders": {b.name: {"name": b.encoder.name, **ref(b.encoder)} for b in cfg.branches},
        "llm": {**ref(cfg.llm), "gguf_file": cfg.llm.gguf_file},
    }


def resolve_checkpoint(
    name_or_path: str | Path,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    token: str | None = None,
) -> Path:
    """The local folder of a checkpoint: ``name_or_path`` itself when it exists, else a hub repo id
    whose checkpoint files are downloaded (cached by huggingface_hub). A path that exists nowhere
    and is no hub id, or a repo that cannot be fetched, is a FileNotFoundError saying which."""
    path = Path(name_or_path)
    if path.exists():
        return path
    text = str(name_or_path)
    if text.count("/") != 1 or text.startswith((".", "/", "~")) or text.endswith("/"):
        raise FileNotFoundError(f"{text} is not a kit checkpoint: no such folder (and not a hub id org/name)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        folder = snapshot_download(
            text, revision=revision, cache_dir=cache_dir, token=token, allow_patterns=[CONFIG, WEIGHTS, BASES]
        )
    except (RepositoryNotFoundError, LocalEntryNotFoundError, HfHubHTTPError, OSError) as err:
        raise FileNotFoundError(
            f"{text}: no local folder of that name, and the hub repo could not be fetched "
            f"({type(err).__name__}: {err}); check the id, revision and network (HF_HUB_OFFLINE)"
        ) from err
    return Path(folder)


def load_checkpoint(directory: str | Path, llm_dtype: str | object | None = None):
    """Rebuild the LALM from its config and load the trained weights (strictly). ``llm_dtype``
    replaces the config's ``model.llm.dtype`` (a name or a torch dtype)."""
    from lalm.model import LALM

    directory = Path(directory)
    for name in (CONFIG, WEIGHTS):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory} is not a kit checkpoint: {name} is missing")
    data = yaml.safe_load((directory / CONFIG).read_text())
    if llm_dtype is not None:
        data.setdefault("model", {}).setdefault("llm", {})["dtype"] = str(llm_dtype).removeprefix("torch.")
    cfg = config_from_dict(data)
    model = LALM(cfg.model)
    state = load_file(directory / WEIGHTS)
    expected = set(model.trained_state_dict())
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        raise ValueError(
            f"{directory / WEIGHTS} does not fit the model built from its config: "
            f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    model.load_state_dict(state, strict=False)
    return model
