"""The training config: the model section of `lalm.config` plus data and train sections."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from lalm.checkpoint import FINAL
from lalm.config import Config, build, validate_tree


@dataclass
class SourceConfig:
    path: str = ""
    """A JSONL file of rows with `audio` (relative paths resolve against the file's folder) and a target."""
    weight: float = 1.0
    """Relative sampling weight of this source in the training mix."""
    target_field: str = "response"
    """Row field that is the answer to learn: `response` for SIFT output, `text` for ASR."""
    prompt: str | None = None
    """Fixed text prompt after the audio (e.g. "Transcribe the audio."); None uses `prompt_field`."""
    prompt_field: str = "instruction"
    """Row field holding a per-row prompt (SIT instructions); absent or null means no text prompt."""

    def validate(self, where: str) -> list[str]:
        problems = []
        if not self.path:
            problems.append(f"{where}.path: a JSONL file is required")
        if self.weight <= 0:
            problems.append(f"{where}.weight: must be positive, got {self.weight}")
        return problems


@dataclass
class DataConfig:
    train: list[SourceConfig] = field(default_factory=list)
    """Training sources, mixed by weight."""
    valid: list[SourceConfig] = field(default_factory=list)
    """Held-out sources for validation loss; empty means `valid_fraction` of the training rows."""
    valid_fraction: float = 0.02
    """Share of training rows held out (by id hash, so stable across runs) when `valid` is empty."""
    max_valid_rows: int = 256
    """At most this many validation rows are scored at each evaluation."""
    batch_seconds: float = 240.0
    """Audio seconds per micro-batch, padding included (longest clip x clips); bounds memory, not count."""
    max_batch_size: int = 64
    """At most this many clips per micro-batch."""
    max_audio_seconds: float = 30.0
    """Longer clips are skipped (and counted)."""
    group_by_length: bool = True
    """Sort clips by duration within a pool before batching, so a batch wastes little on padding."""
    pool_batches: int = 50
    """Length grouping sorts a pool of about this many batches at a time; batch order is shuffled after."""
    num_workers: int = 0
    """DataLoader worker processes that read audio and build prompts."""
    feature_cache: str | None = None
    """Directory of precomputed encoder outputs; they are computed once before training when missing."""

    def validate(self, where: str) -> list[str]:
        problems = []
        if not 0 <= self.valid_fraction < 1:
            problems.append(f"{where}.valid_fraction: must be in [0, 1), got {self.valid_fraction}")
        if self.batch_seconds < self.max_audio_seconds:
            problems.append(f"{where}.batch_seconds ({self.batch_seconds}) must be at least max_audio_seconds "
                            f"({self.max_audio_seconds}) so every clip fits a batch")
        return problems


@dataclass
class TrainConfig:
    out_dir: str = "runs/align"
    """Checkpoints, logs and the final model go here; a rerun resumes from the latest checkpoint."""
    init_from: str | None = None
    """A kit checkpoint whose trained weights start this run (stage 2 loads the stage-1 projector)."""
    steps: int = 1000
    """Optimiser steps."""
    grad_accum: int = 1
    """Micro-batches per optimiser step; the loss is normalised by the step's target-token count."""
    lr: float = 1e-3
    """Peak learning rate."""
    min_lr_ratio: float = 0.1
    """The cosine schedule decays to lr x min_lr_ratio."""
    warmup_steps: int = 50
    """Linear warmup steps."""
    schedule: Literal["cosine", "constant"] = "cosine"
    """Learning-rate schedule after warmup."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    """AdamW betas."""
    clip_grad: float = 1.0
    """Gradient norm clip (0 disables)."""
    objective: Literal["lm", "kd", "label", "ctc"] = "lm"
    """What is learned (train/objectives.py): `lm` is the LLM's cross-entropy on the target; `kd` adds
    `distill_weight` x KL to the same LLM reading the transcript; `label` adds `label_weight` x the
    cross-entropy of linear heads that read the rows' `meta` fields (`label_fields`) off a branch's
    positions; `ctc` is CTC with no LLM forward (an ASR stage: the target field is the transcript),
    training a recognizer (phoneme_ctc) or a ctc projector."""
    distill_weight: float = 0.0
    """Weight of objective kd's KL term to the frozen LLM's own distribution given the transcript."""
    label_fields: list[str] = field(default_factory=list)
    """Objective label: the rows' `meta` fields to predict (e.g. [gender, pace]); each field's classes
    are the values the training rows hold, and rows without the field add no label loss."""
    label_weight: float = 0.0
    """Objective label: the loss is the LLM's mean per-target-token loss plus label_weight x the heads'
    mean cross-entropy over the labelled clips (summed over fields)."""
    answer_margin: float = 0.0
    """Objective label: where a target token is one of a label field's class words (" female", " male";
    the first token of each value, spaced or not, lower or capitalised), add max(0, answer_margin - m)
    nats to the loss, m being that word's logit minus the best other class word's. Cross-entropy stops
    pushing once the right word is likely; this keeps pushing until it leads by answer_margin nats, so
    a voice a little unlike the trained ones still gets the right word (docs/quality.md row AL). 0: off."""
    label_branch: str = ""
    """Objective label: the branch whose positions the heads read; empty: every trainable branch (the
    heads read the branches' mean positions side by side)."""
    distill_text_field: str = "text"
    """Row field with the transcript the distillation teacher reads."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """Autocast precision; auto is bf16 on CUDA and fp32 on CPU."""
    gradient_checkpointing: bool = False
    """Recompute LLM activations in backward to save memory."""
    fsdp: bool = False
    """Shard the frozen LLM across ranks with FSDP2 (fully_shard) when it does not fit one device."""
    seed: int = 0
    """Seed of data order and projector initialisation."""
    log_every: int = 10
    """Steps between log lines."""
    eval_every: int = 100
    """Steps between validation-loss evaluations (0 disables)."""
    save_every: int = 200
    """Steps between checkpoints (one is always written at the end)."""
    keep_last: int = 2
    """Step checkpoints kept; older ones are deleted."""
    logger: Literal["none", "tensorboard", "wandb"] = "none"
    """Metrics go to out_dir/metrics.jsonl always, and to TensorBoard or W&B when chosen."""

    def validate(self, where: str) -> list[str]:
        problems = []
        for name in ("steps", "grad_accum", "log_every", "save_every", "keep_last"):
            if getattr(self, name) < 1:
                problems.append(f"{where}.{name}: must be at least 1, got {getattr(self, name)}")
        if len(self.betas) != 2:
            problems.append(f"{where}.betas: two numbers, got {self.betas}")
        return problems


@dataclass
class StageConfig:
    name: str = ""
    """Stage name: its checkpoints go to `train.out_dir/<name>/`."""
    data: dict = field(default_factory=dict)
    """Fields of the `data` section this stage changes, merged over the top-level section."""
    train: dict = field(default_factory=dict)
    """Fields of the `train` section this stage changes (e.g. `{objective: ctc, steps: 2000}`)."""


@dataclass
class AlignConfig(Config):
    """A training yaml: `model`, `data` and `train` sections, and optionally `stages`."""

    data: DataConfig = field(default_factory=DataConfig)
    """Training and validation data."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Optimisation, checkpoints and logging."""
    stages: list[StageConfig] = field(default_factory=list)
    """A curriculum: stages run in order on the same model, each starting from the previous one's
    final weights; each changes only the `data`/`train` fields it names. The last stage's model is
    also written to `train.out_dir/final`. Empty: one run of the top-level sections."""

    def validate(self, where: str) -> list[str]:
        problems = []
        if self.train.fsdp and self.model.llm.lora.enabled:
            problems.append("train.fsdp with model.llm.lora.enabled is not supported; use DDP for LoRA runs")
        from lalm.train.objectives import trained_recognizer

        if (not any(b.trainable and b.projector is not None for b in self.model.branches)
                and not self.model.llm.lora.enabled and not trained_recognizer(self)):
            problems.append("model: nothing trains (every branch has trainable: false or no projector, LoRA is off "
                            "and no recognizer trains)")
        names = [s.name for s in self.stages]
        if any(not n or "/" in n for n in names) or len(set(names)) != len(names):
            problems.append(f"stages: every stage needs a unique name without '/', got {names}")
        for i, stage in enumerate(self.stages):
            stage_problems: list[str] = []
            resolved = resolve_stage(self, stage, None, stage_problems)
            if resolved is not None:
                stage_problems += validate_tree(resolved.data, "data") + validate_tree(resolved.train, "train")
                stage_problems += resolved.check_objective() + resolved.check_sources()
            problems += [f"stages.{i} ({stage.name}): {p}" for p in stage_problems]
        if not self.stages:
            problems += self.check_objective() + self.check_sources()
        return problems

    def check_sources(self) -> list[str]:
        if not self.data.train:
            return ["data.train: at least one training source is needed (a JSONL of audio rows, e.g. SIFT output)"]
        return []

    def check_objective(self) -> list[str]:
        from lalm.train.objectives import OBJECTIVES

        return OBJECTIVES.get(self.train.objective).check(self)

    def resolved_stages(self) -> list[tuple[str, AlignConfig]]:
        """(name, config) of each stage in order; without stages, one unnamed stage: this config."""
        if not self.stages:
            return [("", self)]
        out, previous = [], None
        for stage in self.stages:
            resolved = resolve_stage(self, stage, previous, [])
            out.append((stage.name, resolved))
            previous = resolved
        return out


def resolve_stage(cfg: AlignConfig, stage: StageConfig, previous: AlignConfig | None,
                  problems: list[str]) -> AlignConfig | None:
    """The config one stage runs: top-level data/train with the stage's fields, its own out_dir, and
    (unless it names one) the previous stage's final weights as `init_from`."""
    from pathlib import Path

    data = build(DataConfig, {**dataclasses.asdict(cfg.data), **stage.data}, "data", problems)
    train = build(TrainConfig, {**dataclasses.asdict(cfg.train), **stage.train}, "train", problems)
    if data is None or train is None:
        return None
    train.out_dir = str(Path(cfg.train.out_dir) / stage.name)
    if previous is not None and "init_from" not in stage.train:
        train.init_from = str(Path(previous.train.out_dir) / FINAL)
    return dataclasses.replace(cfg, data=data, train=train, stages=[])

