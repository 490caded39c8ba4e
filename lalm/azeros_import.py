"""Turn the released AZeroS checkpoint (`AudenAI/azeros`) into a kit checkpoint.

    python -m lalm.azeros_import --checkpoint AudenAI/azeros --out runs/azeros_kit
    python -m lalm.eval.voicebench --model runs/azeros_kit ...     # then like any kit checkpoint

The released folder, as AudenAI/Auden's `examples/azeros` reads it (see docs/azeros.md):

- `config.json`: `model_type: azeros`; `speech_encoder_config` and `paraling_encoder_config` (Zipformer
  fields), `llm_config` (the Qwen2 config), `speech_encoder_projector_ds_rate` and
  `paraling_encoder_projector_ds_rate` (frames stacked per projector output, 4), and
  `exclude_from_checkpoint`: the modules saved in their own sub-folders rather than in the weight file.
- the weight file (`pretrained.safetensors`, `model.safetensors`, or a `.pt`): the two projectors,
  `speech_encoder_projector.linear1/linear2` and `paraling_encoder_projector.linear1/linear2`, each
  Linear(D * k, H) -> ReLU -> Linear(H, H) over k stacked frames, H the LLM width; a clip's last partial
  group of frames is dropped.
- `speech_encoder/` (the semantic TTA Zipformer), `paraling_encoder/` (the Auden-Voice Zipformer): Auden
  encoder folders; `llm/`: the frozen LLM (Qwen2.5-7B-Instruct) as a transformers folder; the tokenizer
  at the top level.
- the prompt: one user turn whose text starts with
  `<audio><meta>{paralinguistic frames}</meta><text>{semantic frames}</text></audio>`, rendered with the
  tokenizer's own chat template.

The kit model is the dual setup of configs/azeros_stage2_dual_qwen2_5_7b.yaml with those weights: the
two Zipformers from the sub-folders, `stack_mlp` projectors (`k`, `hidden` = H, `drop_tail: true`), the
same layout, and the LLM from `OUT/llm`, a folder of links to `llm/`'s files and the top-level tokenizer
(nothing large is copied; keep the released folder where it is). The LLM runs in float16 by default,
as the reference does.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from lalm.checkpoint import BASES, CONFIG, WEIGHTS, base_references, replace_dir
from lalm.config import Config, config_from_dict, to_dict
from lalm.errors import UserError, run_command

WEIGHT_FILES = ("pretrained.safetensors", "model.safetensors", "pretrained.pt", "model.pt")
#: AZeroS module -> kit branch; the layout puts the paralinguistic frames first.
BRANCHES = {"paraling_encoder": "paralinguistic", "speech_encoder": "semantic"}
LAYOUT = "<audio><meta>{paralinguistic}</meta><text>{semantic}</text></audio>"
#: AZeroS projector weights -> the kit's stack_mlp (mlp = Linear, ReLU, Linear).
PROJECTOR_KEYS = {
    "linear1.weight": "mlp.0.weight",
    "linear1.bias": "mlp.0.bias",
    "linear2.weight": "mlp.2.weight",
    "linear2.bias": "mlp.2.bias",
}
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
)


class AzerosLayoutError(UserError, ValueError):
    """A folder that is not an AZeroS checkpoint as released (names the file and what is missing)."""


def resolve_source(checkpoint: str) -> Path:
    """A local folder, or the hub repo downloaded whole (the LLM is ~15 GB)."""
    if Path(checkpoint).is_dir():
        return Path(checkpoint)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(checkpoint))


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    present = [folder / n for n in WEIGHT_FILES if (folder / n).is_file()]
    if not present:
        raise AzerosLayoutError(f"{folder}: none of {', '.join(WEIGHT_FILES)} (the projector weights)")
    if present[0].suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(present[0])
    state = torch.load(present[0], map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def projector_state(weights: dict[str, torch.Tensor], where: Path) -> dict[str, torch.Tensor]:
    """Both AZeroS projectors' tensors under the kit's names (DDP's `module.` prefix tolerated)."""
    found = {k.removeprefix("module."): v for k, v in weights.items()}
    wanted = {
        f"{module}_projector.{key}": f"branches.{branch}.projector.{kit}"
        for module, branch in BRANCHES.items()
        for key, kit in PROJECTOR_KEYS.items()
    }
    missing = [k for k in wanted if k not in found]
    if missing:
        raise AzerosLayoutError(f"{where}: the weight file lacks {', '.join(missing)}")
    return {kit: found[key].float().contiguous() for key, kit in wanted.items()}


def encoder_width(folder: Path) -> int:
    """The Zipformer's output width, max(encoder_dim), from its config.json alone."""
    from lalm.encoders.zipformer import ZipformerConfig, read_auden_config

    return max(ZipformerConfig.from_dict(read_auden_config(str(folder))).encoder_dim)


def kit_config(
    source: Path, raw: dict, state: dict, encoders: dict[str, str], llm: str, dtype: str
) -> Config:
    """The kit config of the imported model, its shapes checked against the weights."""
    branches = []
    for module, branch in BRANCHES.items():
        k = int(raw.get(f"{module}_projector_ds_rate", 4))
        first = state[f"branches.{branch}.projector.mlp.0.weight"]
        hidden, stacked = first.shape
        width = encoder_width(Path(encoders[module])) if Path(encoders[module]).is_dir() else stacked // k
        if stacked != width * k:
            raise AzerosLayoutError(
                f"{module}_projector.linear1 takes {stacked} inputs, but the encoder gives "
                f"{width} x {k} stacked frames ({encoders[module]})"
            )
        branches.append(
            {
                "name": branch,
                "encoder": {"name": "zipformer", "path": encoders[module]},
                "projector": {
                    "name": "stack_mlp",
                    "options": {"k": k, "hidden": int(hidden), "drop_tail": True},
                },
                # as stage 2 trained it: the semantic branch came frozen from stage 1
                "trainable": branch == "paralinguistic",
            }
        )
    model = {"branches": branches, "llm": {"path": llm, "dtype": dtype}, "prompt": {"layout": LAYOUT}}
    return config_from_dict({"model": model})


def link_llm(source: Path, target: Path) -> None:
    """`target`: links to the LLM's files in `llm/` and to the tokenizer the reference loads (the top
    level's, else `llm/`'s), so the kit loads both from one folder without copying gigabytes."""
    llm_dir = source / "llm"
    if not (llm_dir / "config.json").is_file():
        raise AzerosLayoutError(
            f"{llm_dir}/config.json is missing: pass --llm with the frozen LLM "
            "(unverified: Qwen/Qwen2.5-7B-Instruct, the LLM AZeroS names)"
        )
    target.mkdir(parents=True)
    tokenizer_home = source if (source / "tokenizer_config.json").is_file() else llm_dir
    for file in sorted(llm_dir.iterdir()):
        if file.is_file() and file.name not in TOKENIZER_FILES:
            os.symlink(file.resolve(), target / file.name)
    for name in TOKENIZER_FILES:
        if (tokenizer_home / name).is_file():
            os.symlink((tokenizer_home / name).resolve(), target / name)


def import_azeros(
    checkpoint: str,
    out: str | Path,
    *,
    dtype: str = "float16",
    llm: str | None = None,
    speech_encoder: str | None = None,
    paraling_encoder: str | None = None,
) -> Path:
    """Write the kit checkpoint of a released AZeroS folder (or hub id) to `out`; returns `out`."""
    source = resolve_source(checkpoint)
    config_file = source / "config.json"
    if not config_file.is_file():
        raise AzerosLayoutError(
            f"{source}: no config.json; expected the AZeroS release layout (docs/azeros.md)"
        )
    raw = json.loads(config_file.read_text())
    if raw.get("model_type") != "azeros":
        raise AzerosLayoutError(f"{config_file}: model_type is {raw.get('model_type')!r}, not 'azeros'")
    state = projector_state(read_weights(source), source)
    given = {"speech_encoder": speech_encoder, "paraling_encoder": paraling_encoder}
    encoders = {m: given[m] or str((source / m).resolve()) for m in BRANCHES}
    for module in encoders:
        if given[module] is None and not (source / module / "config.json").is_file():
            raise AzerosLayoutError(
                f"{source / module}: no Auden encoder folder; pass --{module.replace('_', '-')}"
            )
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        llm_path = llm
        if llm_path is None:
            link_llm(source, tmp / "llm")
            llm_path = str(out / "llm")  # where the links land after the rename
        cfg = kit_config(source, raw, state, encoders, llm_path, dtype)
        from safetensors.torch import save_file

        save_file(state, tmp / WEIGHTS)
        import yaml

        (tmp / CONFIG).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        (tmp / BASES).write_text(json.dumps(base_references(cfg.model), indent=2))
        (tmp / "azeros_source.json").write_text(
            json.dumps({"checkpoint": checkpoint, "folder": str(source)}, indent=2)
        )
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m lalm.azeros_import",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, help="the released folder, or its hub id (AudenAI/azeros)")
    p.add_argument("--out", required=True, help="the kit checkpoint folder to write")
    p.add_argument(
        "--dtype",
        default="float16",
        choices=("float16", "bfloat16", "float32"),
        help="the frozen LLM's dtype (default: %(default)s, as the reference runs it)",
    )
    p.add_argument(
        "--llm", help="the LLM folder or hub id instead of the release's llm/ (unverified equivalence)"
    )
    p.add_argument("--speech-encoder", help="the semantic Zipformer instead of speech_encoder/")
    p.add_argument("--paraling-encoder", help="the paralinguistic Zipformer instead of paraling_encoder/")
    args = p.parse_args(argv)
    out = import_azeros(
        args.checkpoint,
        args.out,
        dtype=args.dtype,
        llm=args.llm,
        speech_encoder=args.speech_encoder,
        paraling_encoder=args.paraling_encoder,
    )
    print(f"kit checkpoint: {out} (LALM.from_pretrained({str(out)!r}))")
    return 0


def cli() -> int:
    return run_command(main, (ValueError, FileNotFoundError))


if __name__ == "__main__":
    sys.exit(cli())
