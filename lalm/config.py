"""Typed configs loaded from yaml, with dotted `key.sub=value` overrides.

Every problem in a config (unknown keys, wrong types, bad names, missing paths) is collected and
raised together as one ConfigError before any weights load, so a user fixes a yaml file once
rather than once per model load.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from lalm.errors import UserError


class ConfigError(UserError, ValueError):
    """All problems found in a config, one per line."""

    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = problems
        super().__init__(f"{source} has {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))


# --------------------------------------------------------------------------------------------- schema


@dataclass
class EncoderConfig:
    name: str = "whisper"
    """Registry name of the encoder class (see `lalm.encoders.ENCODERS`)."""
    path: str | None = None
    """Weights: a hub id, a local Hugging Face directory, or a CTranslate2 (faster-whisper) directory."""
    random_config: dict | None = None
    """Architecture fields for a randomly initialised encoder (tests, benchmarks); instead of `path`."""
    seed: int = 0
    """Seed of the random initialisation; with `random_config`, the same seed gives the same weights."""
    options: dict = field(default_factory=dict)
    """Extra keyword options of the encoder class, e.g. `pad_to_30s: true` for Whisper."""

    def validate(self, where: str) -> list[str]:
        from lalm.encoders import ENCODERS, weightless

        problems = []
        if self.name not in ENCODERS:
            problems.append(f"{where}.name: unknown encoder {self.name!r}; valid: {', '.join(ENCODERS.names())}")
        problems += ENCODERS.option_problems(
            self.name, self.options, ("path", "random_config", "seed"), f"{where}.options"
        )
        if self.name in weightless():
            if self.path is not None or self.random_config is not None:
                problems.append(f"{where}: encoder {self.name!r} has no weights; remove `path` and `random_config`")
        else:
            problems += _one_source(self.path, self.random_config, where)
        return problems


PROJECTOR_RESERVED = ("in_dim", "out_dim")
"""Projector constructor arguments the model sets (encoder width, LLM width), never options."""


@dataclass
class ProjectorConfig:
    name: str = "stack_mlp"
    """Registry name of the projector class (see `adapters.PROJECTORS`)."""
    options: dict = field(default_factory=dict)
    """Keyword options of the projector, e.g. `k: 8` frames stacked for `stack_mlp`."""

    def validate(self, where: str) -> list[str]:
        from lalm.adapters import PROJECTORS

        if self.name == "phoneme_ctc":  # a projector until the recognizer interface took it
            return [(f"{where}.name: phoneme_ctc is a recognizer now: give the branch `projector: null` and the "
                     "model `recognizer: {name: phoneme_ctc, branch: BRANCH, head: {k, hidden, dropout, voice, "
                     "phonemes}, options: {decoding settings}}` with {transcript} in the layout "
                     "(configs/phoneme_ctc_offline.yaml)")]
        if self.name not in PROJECTORS:
            return [f"{where}.name: unknown projector {self.name!r}; valid: {', '.join(PROJECTORS.names())}"]
        return PROJECTORS.option_problems(self.name, self.options, PROJECTOR_RESERVED, f"{where}.options")


@dataclass
class BranchConfig:
    name: str = "audio"
    """Name of the branch; the prompt layout places its features at `{name}`."""
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """The frozen audio encoder of this branch."""
    projector: ProjectorConfig | None = field(default_factory=ProjectorConfig)
    """The projector from this encoder's features to the LLM's embedding width; null: the branch has no
    positions in the prompt, and its encoder only feeds the trained recognizer that reads it
    (`model.recognizer.branch`)."""
    trainable: bool = True
    """Whether the projector trains; false freezes it (stage 2 of a dual setup freezes stage 1)."""


@dataclass
class LoraConfig:
    enabled: bool = False
    """Add peft LoRA adapters to the frozen LLM and train them with the projectors."""
    r: int = 8
    """LoRA rank."""
    alpha: int = 16
    """LoRA scaling numerator (scale = alpha / r)."""
    dropout: float = 0.05
    """Dropout on the LoRA input."""
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    """Names of the LLM's linear modules that get adapters."""


@dataclass
class LLMConfig:
    path: str | None = None
    """A hub id, a local directory, or a `.gguf` file of a chat causal LM."""
    gguf_file: str | None = None
    """GGUF file name inside `path`, when `path` is a directory or hub id."""
    random_config: dict | None = None
    """Fields of a randomly initialised LLM with a byte-level ChatML tokenizer (tests); instead of `path`."""
    seed: int = 0
    """Seed of the random initialisation."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Weight dtype of the frozen LLM (bfloat16 on GPUs, float32 on CPU)."""
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = "sdpa"
    """Attention kernel; flash_attention_2 needs the `flash` extra."""
    lora: LoraConfig = field(default_factory=LoraConfig)
    """Optional LoRA on the LLM."""

    def validate(self, where: str) -> list[str]:
        return _one_source(self.path, self.random_config, where)


@dataclass
class PromptConfig:
    layout: str = "<audio>{audio}</audio>"
    """Text around the audio features. Each `{branch}` is replaced by that branch's feature positions."""
    system_prompt: str | None = None
    """System message added to every conversation that has none (None: the chat template's default)."""


TRANSCRIPT = "transcript"
"""The layout placeholder where the recognizer's transcript goes, as text (no branch may take this name)."""


@dataclass
class RecognizerConfig:
    name: str = "whisper"
    """Registry name of the recognizer (see `lalm.recognizers.RECOGNIZERS`): `whisper` is the frozen
    Whisper's own decoder; `phoneme_ctc` a phoneme CTC head the kit trains (objective ctc)."""
    path: str | None = None
    """A frozen recognizer's weights: a CTranslate2 Whisper folder, a `pkg:` path, a transformers Whisper
    folder or hub id. A trained recognizer has none (its weights are in the checkpoint)."""
    branch: str | None = None
    """A trained recognizer: the branch whose frozen encoder frames it reads (computed once for both)."""
    head: dict = field(default_factory=dict)
    """A trained recognizer's shape (phoneme_ctc: `k`, `hidden`, `dropout`, `voice`, `phonemes`): what
    it learned, fixed once trained."""
    options: dict = field(default_factory=dict)
    """Decoding settings, inference only (whisper: `language`, `batch_size`; phoneme_ctc: `lm_weight`,
    `lm_beam`, the lexicon's `wordnet` and `words`): saved with a checkpoint, and a checkpoint's can be
    overridden when it loads (`--model DIR model.recognizer.options.lm_beam=8`)."""

    def validate(self, where: str) -> list[str]:
        from lalm.recognizers import RECOGNIZERS

        if self.name not in RECOGNIZERS:
            return [f"{where}.name: unknown recognizer {self.name!r}; valid: {', '.join(RECOGNIZERS.names())}"]
        name = self.name
        cls = RECOGNIZERS.get(name)
        head, decoding = set(cls.head_options), set(cls.decoding_option_names())
        problems = []
        for key in sorted(set(self.options) & head):
            problems.append(f"{where}.options.{key}: a trained setting of recognizer {name!r}; put it under "
                            f"{where}.head")
        for key in sorted(set(self.head) & decoding):
            problems.append(f"{where}.head.{key}: a decoding setting of recognizer {name!r}; put it under "
                            f"{where}.options")
        if problems:
            return problems
        problems += RECOGNIZERS.option_problems(name, self.options, (*cls.reserved, *head), f"{where}.options")
        if cls.trainable:
            problems += RECOGNIZERS.option_problems(name, self.head, (*cls.reserved, *decoding), f"{where}.head")
            if self.path:
                problems.append(f"{where}.path: recognizer {name!r} is trained by the kit (its weights are in the "
                                "checkpoint); remove path")
            if not self.branch:
                problems.append(f"{where}.branch: recognizer {name!r} reads a branch's encoder frames; name the "
                                "branch (e.g. branch: audio)")
        else:
            if self.head:
                problems.append(f"{where}.head: recognizer {name!r} is frozen and has no head settings")
            if self.branch:
                problems.append(f"{where}.branch: recognizer {name!r} reads the waveform with its own encoder; "
                                "remove branch")
            if not self.path:
                problems.append(f"{where}.path: the recognizer's weights are required")
        if not problems:
            problems += cls.config_problems(self.head, self.options, where)
        return problems


@dataclass
class ModelConfig:
    branches: list[BranchConfig] = field(default_factory=lambda: [BranchConfig()])
    """Encoder + projector branches; one for Whisper setups, two for the dual AZeroS setup."""
    llm: LLMConfig = field(default_factory=LLMConfig)
    """The frozen chat LLM."""
    prompt: PromptConfig = field(default_factory=PromptConfig)
    """How audio is laid out in the prompt."""
    recognizer: RecognizerConfig | None = None
    """A recognizer whose transcript of each clip stands at `{transcript}` in the layout, as text (the
    frozen Whisper's own decoder, DeSTA-style, or a trained phoneme CTC recognizer); None: the audio
    reaches the LLM through projectors only."""

    def validate(self, where: str) -> list[str]:
        problems = []
        names = [b.name for b in self.branches]
        if TRANSCRIPT in names:
            problems.append(f"{where}.branches: {TRANSCRIPT!r} is the recognizer's layout slot; rename the branch")
        if not names:
            problems.append(f"{where}.branches: at least one branch is needed")
        if len(set(names)) != len(names):
            problems.append(f"{where}.branches: branch names must be unique, got {names}")
        slots = re.findall(r"\{(\w+)\}", self.prompt.layout)
        read = self.recognizer.branch if self.recognizer is not None else None
        if read is not None and read not in names:
            problems.append(f"{where}.recognizer.branch: {read!r} names no branch; branches: {names}")
        for b in self.branches:
            if b.projector is None:
                if b.name != read:
                    problems.append(f"{where}.branches: branch {b.name!r} has no projector, so only a trained "
                                    f"recognizer can read it; set {where}.recognizer.branch: {b.name}, or give "
                                    "the branch a projector")
                if b.name in slots:
                    problems.append(f"{where}.prompt.layout: branch {b.name!r} has no projector, so it has no "
                                    f"positions; remove {{{b.name}}} from {self.prompt.layout!r}")
        for name in [b.name for b in self.branches if b.projector is not None]:
            if slots.count(name) != 1:
                problems.append(
                    f"{where}.prompt.layout: must contain {{{name}}} exactly once (found {slots.count(name)}) "
                    f"in {self.prompt.layout!r}"
                )
        if self.recognizer is not None and slots.count(TRANSCRIPT) != 1:
            problems.append(f"{where}.prompt.layout: a model with a recognizer must place {{{TRANSCRIPT}}} exactly "
                            f"once (found {slots.count(TRANSCRIPT)}) in {self.prompt.layout!r}")
        if self.recognizer is None and TRANSCRIPT in slots:
            problems.append(f"{where}.prompt.layout: {{{TRANSCRIPT}}} needs {where}.recognizer (who writes it?)")
        for slot in set(slots) - set(names) - {TRANSCRIPT}:
            problems.append(f"{where}.prompt.layout: {{{slot}}} names no branch; branches: {names}")
        return problems


@dataclass
class Config:
    """The top-level config of a yaml file under configs/."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """The LALM: branches, LLM and prompt layout."""


def _one_source(path: str | None, random_config: dict | None, where: str) -> list[str]:
    if (path is None) == (random_config is None):
        return [f"{where}: set exactly one of `path` (real weights) or `random_config` (random init)"]
    return []


# --------------------------------------------------------------------------------------------- loading


TRAINING_SECTIONS = ("data", "train", "stages")
"""Top-level sections of a training yaml (`train.config.AlignConfig`): a model-only load (chat,
serve, smoke) reads the `model` section of such a file and leaves these to training."""


def load_config(path: str | Path | None = None, overrides: list[str] = (), cls: type = Config):
    """Read a yaml file (or start from defaults), apply `a.b.c=value` overrides and validate.

    With ``cls=Config`` (the model only), a training yaml's `data`/`train`/`stages` sections are
    set aside, so one file serves training and the model-only commands alike.
    """
    data: dict[str, Any] = {}
    source = "config"
    if path is not None:
        source = str(path)
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError([f"cannot read: {err}"], source) from err
        if not isinstance(data, dict):
            raise ConfigError(["the file must hold a mapping at top level"], source)
    problems: list[str] = []
    for item in overrides:
        problems += apply_override(data, item)
    if cls is Config:
        data = {k: v for k, v in data.items() if k not in TRAINING_SECTIONS}
    cfg = build(cls, data, "", problems)
    if cfg is not None:
        problems += validate_tree(cfg, "")
    if problems:
        raise ConfigError(problems, source)
    return cfg


def config_from_dict(data: dict, cls: type = Config):
    """Build and validate a config from plain data (as saved in a checkpoint)."""
    problems: list[str] = []
    cfg = build(cls, data, "", problems)
    if cfg is not None:
        problems += validate_tree(cfg, "")
    if problems:
        raise ConfigError(problems)
    return cfg


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def apply_override(data: dict, item: str) -> list[str]:
    """Set `a.b.0.c=value` in nested data; the value is parsed as yaml (`8`, `true`, `[a, b]`, `null`)."""
    if "=" not in item:
        return [f"override {item!r}: expected key.sub=value"]
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        return [f"override {item!r}: value is not valid yaml ({err})"]
    node: Any = data
    parts = key.strip().split(".")
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                return [f"override {item!r}: {'.'.join(parts[:depth])} is a list of {len(node)}; use an index"]
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
        else:
            return [f"override {item!r}: {'.'.join(parts[:depth])} is a value, not a section"]
    return []


def build(cls: type, data: Any, where: str, problems: list[str]):
    """Turn plain data into dataclass `cls`, appending every problem found to `problems`."""
    if not isinstance(data, dict):
        problems.append(f"{where or 'top level'}: expected a mapping, got {type(data).__name__}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            problems.append(f"{_join(where, key)}: unknown key; valid: {', '.join(fields)}")
    values = {}
    for name in fields:
        if name in data:
            values[name] = _convert(hints[name], data[name], _join(where, name), problems)
    try:
        return cls(**{k: v for k, v in values.items() if v is not _BAD})
    except TypeError as err:
        problems.append(f"{where or 'top level'}: {err}")
        return None


_BAD = object()
_YAML11_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _convert(hint, value, where: str, problems: list[str]):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where, problems)
    if origin is Literal:
        if value not in args:
            problems.append(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
            return _BAD
        return value
    if dataclasses.is_dataclass(hint):
        built = build(hint, value, where, problems)
        return _BAD if built is None else built
    if origin is list:
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list, got {value!r}")
            return _BAD
        items = [_convert(args[0], v, f"{where}.{i}", problems) for i, v in enumerate(value)]
        return _BAD if _BAD in items else items
    expected = origin or hint
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is float and isinstance(value, str) and _YAML11_FLOAT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads 6e-3 and 1e5 (no dot) as text; they mean numbers here
    if expected is int and isinstance(value, bool) or not isinstance(value, expected):
        problems.append(f"{where}: expected {expected.__name__}, got {value!r}")
        return _BAD
    return value


def validate_tree(cfg, where: str) -> list[str]:
    """Run every dataclass's `validate(where)` in the tree, collecting all problems."""
    problems = []
    if hasattr(cfg, "validate"):
        problems += cfg.validate(where or "top level")
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            if dataclasses.is_dataclass(item):
                sub = _join(where, f.name) + (f".{i}" if isinstance(value, list) else "")
                problems += validate_tree(item, sub)
    return problems


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


# ------------------------------------------------------------------------------------------ documenting


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a config dataclass (and of its bases), read from its source."""
    import ast
    import inspect
    import textwrap

    docs: dict[str, str] = {}
    for klass in reversed([c for c in cls.__mro__ if dataclasses.is_dataclass(c)]):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):  # no source (a frozen install): fields stay undocumented
            continue
        body = tree.body[0].body
        for node, after in itertools.pairwise(body):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def describe_fields(cls: type, prefix: str = "") -> list[str]:
    """One line per setting, `dotted.name (default): what it does`, nested sections expanded; list
    sections show their first element's fields as `name.0.field`. For a command's --help (as litgpt's)."""
    lines: list[str] = []
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        name = f"{prefix}{f.name}"
        hint = hints[f.name]
        if f.default_factory is not dataclasses.MISSING and type(None) in typing.get_args(hint):
            hint = next(a for a in typing.get_args(hint) if a is not type(None))  # optional, present by default
        inner = typing.get_args(hint)[0] if typing.get_origin(hint) is list and typing.get_args(hint) else None
        if dataclasses.is_dataclass(hint):
            lines += describe_fields(hint, f"{name}.")
        elif inner is not None and dataclasses.is_dataclass(inner):
            lines += describe_fields(inner, f"{name}.0.")
        else:
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else "required")
            lines.append(f"{name} ({default!r}): {docs.get(f.name, '')}".rstrip(": "))
    return lines
