"""Choosing the model on the command line of `lalm.chat` and `lalm.serve`.

A trained checkpoint (`--model DIR`) is the normal case; `--config YAML [overrides]` builds an
untrained model from a config, to try the whole pipeline before any training.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lalm.config import load_config
from lalm.generation import resolve_device
from lalm.model import LALM


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="checkpoint directory (written by LALM.save_pretrained or training)")
    source.add_argument("--config", help="yaml config: an untrained model built from it (projector output is noise)")
    parser.add_argument("overrides", nargs="*", help="with --config: overrides, key.sub=value; with --model: its "
                        "recognizer's decoding settings only, model.recognizer.options.KEY=VALUE")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available, else cpu)")


def load_model(args: argparse.Namespace) -> LALM:
    # A checkpoint carries its own config: only its recognizer's decoding settings change at load (read_config).
    model = (LALM.from_pretrained(args.model, overrides=args.overrides) if args.model
             else LALM(load_config(args.config, args.overrides).model))
    return model.to(resolve_device(args.device)).eval()


def model_name(args: argparse.Namespace) -> str:
    """A readable name: the checkpoint's folder, or the config's file stem."""
    return Path(args.model).resolve().name if args.model else Path(args.config).stem
