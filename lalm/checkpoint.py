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

from lalm.config import Config, ConfigError, apply_override, config_from_dict, to_dict

WEIGHTS = "trained.safetensors"
CONFIG = "config.yaml"
BASES = "base_models.json"
#: The checkpoint a training run publishes under its out_dir when it finishes (step ones are step-N).
FINAL = "final"


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


#: The settings of a checkpoint's config that may change when it loads: how its recognizer decodes.
#: Everything else (shapes, what was trained, the bases) is what the checkpoint is.
INFERENCE_SETTINGS = "model.recognizer.options."


def read_config(directory: str | Path, llm_dtype: str | object | None = None, overrides: list[str] = ()) -> Config:
    """The config a checkpoint folder was saved with; ``llm_dtype`` replaces its ``model.llm.dtype``
    (a name or a torch dtype), and ``overrides`` (``model.recognizer.options.KEY=VALUE``) its recognizer's
    decoding settings. FileNotFoundError naming the missing file if it is no checkpoint; ConfigError
    for an override of anything but a decoding setting."""
    directory = Path(directory)
    for name in (CONFIG, WEIGHTS):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory} is not a kit checkpoint: {name} is missing")
    data = yaml.safe_load((directory / CONFIG).read_text())
    if llm_dtype is not None:
        data.setdefault("model", {}).setdefault("llm", {})["dtype"] = str(llm_dtype).removeprefix("torch.")
    problems = []
    for item in overrides:
        if not item.strip().startswith(INFERENCE_SETTINGS):
            problems.append(f"override {item!r}: a checkpoint's config is what it was trained as; only its "
                            f"recognizer's decoding settings ({INFERENCE_SETTINGS}KEY=VALUE) change when it loads")
        elif not (data.get("model") or {}).get("recognizer"):
            problems.append(f"override {item!r}: {directory} has no recognizer")
        else:
            problems += apply_override(data, item)
    if problems:
        raise ConfigError(problems, str(directory / CONFIG))
    return config_from_dict(data)


def read_bases(directory: str | Path) -> dict | None:
    """Where a checkpoint's frozen bases come from (its base_models.json), or None for an old one without."""
    path = Path(directory) / BASES
    return json.loads(path.read_text()) if path.is_file() else None


def load_trained(model, source: str | Path | dict, *, partial: bool = False) -> list[str]:
    """Load trained weights (a checkpoint folder, or a state dict already read) into ``model``.

    The one strictness rule of the kit: every saved weight must have a place in the model, and every
    trained weight of the model must be saved, except with ``partial=True``, for a run that starts
    from an earlier one (``train.init_from``: stage 2 may add trainable parts that stage 1 did not
    have). Returns the model's trained weights left at their initial values (empty unless partial).
    """
    where = f"{source}/{WEIGHTS}" if not isinstance(source, dict) else "the saved weights"
    state = load_file(Path(source) / WEIGHTS) if not isinstance(source, dict) else source
    own = model.trained_state_dict()
    expected = set(own)
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if unexpected or (missing and not partial):
        raise ValueError(
            f"{where} does not fit the model: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    # A part whose width changed since training (an encoder that gained a feature) is named, not left
    # to torch's size-mismatch traceback.
    reshaped = [f"{k} {list(state[k].shape)} saved, {list(own[k].shape)} here" for k in sorted(expected & set(state))
                if state[k].shape != own[k].shape]
    if reshaped:
        raise ValueError(f"{where} does not fit the model: {'; '.join(reshaped[:3])}. A part changed width since "
                         "this checkpoint was trained (e.g. a newer encoder version with more features): "
                         "retrain it, or load it with the kit version that trained it")
    model.load_state_dict(state, strict=False)
    return missing
