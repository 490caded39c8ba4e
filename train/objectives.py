"""Training objectives as components: the config names one (`train.objective`), it checks the model
the config describes before any weights load, and it computes a micro-batch's loss.

- `lm`: the frozen LLM's cross-entropy on the target tokens, through the audio positions.
- `kd`: `lm` plus `train.distill_weight` x KL to the same frozen LLM reading the row's transcript
  (Ultravox's distillation: the teacher is exact, since it is the student's own LLM).
- `label`: `lm` plus `train.label_weight` x the cross-entropy of linear heads that read speaker metadata
  (the rows' `meta`: gender, pace) off the mean of the branches' output positions. The LLM-loss gradient
  of a one-word answer ("female") is a small share of a batch's target tokens; the heads give the
  branch a direct signal that its positions must tell those classes apart (docs/quality.md). With
  `train.answer_margin`, the LLM's own answer word must also lead the other class words by that many
  nats (a hinge, where cross-entropy would stop pushing once the word is likely).
- `ctc`: CTC with no LLM forward (an ASR stage; the target is the transcript): a trained recognizer
  (`phoneme_ctc`) on the transcript's text, a `ctc` projector on its tokens.

Something must train: a trained recognizer writes text, so no LLM-loss gradient reaches it, and
`lm`/`kd` with nothing else trainable is a config error, not an idle run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from lalm.adapters.base import valid_mask
from lalm.config import ConfigError
from lalm.registry import Registry

if TYPE_CHECKING:
    from lalm.train.config import AlignConfig


class Objective(nn.Module):
    """One way to turn a batch into a loss. `batch` says what BatchLoader builds for it (`lm` or `ctc`
    inputs) and `teacher` whether rows also carry the transcript-reading teacher's prompt.

    Built once per run from the config, the training rows and the model; its own parameters (label
    heads) train with the model's and are saved in the trainer state, not with the trained weights:
    they are not part of the model a checkpoint serves."""

    batch: ClassVar[str] = "lm"
    teacher: ClassVar[bool] = False
    #: Whether it trains a trained recognizer (its head is in the optimiser only then).
    trains_recognizer: ClassVar[bool] = False

    @classmethod
    def check(cls, cfg: AlignConfig) -> list[str]:
        """Problems with using this objective on the model `cfg` describes (config time, no weights)."""
        return []

    @classmethod
    def check_rows(cls, cfg: AlignConfig, rows: list) -> list[str]:
        """Problems with the training rows for this objective (after they are read, before the model loads)."""
        return []

    def __init__(self, cfg: AlignConfig | None = None, rows: list | None = None, model=None):
        super().__init__()

    def report(self) -> dict[str, torch.Tensor]:
        """Sums of this objective's own terms since the last call, as tensors the trainer all-reduces
        and divides by their `n` (e.g. label loss and accuracy); empty for most objectives."""
        return {}

    def loss(self, model, inputs: dict, batch: dict, cfg: AlignConfig) -> tuple[torch.Tensor, torch.Tensor]:
        """(the summed objective to report, the summed loss to backpropagate) of one micro-batch."""
        raise NotImplementedError


OBJECTIVES: Registry[Objective] = Registry("objective")


def trainable_projectors(cfg: AlignConfig) -> list[tuple[str, type]]:
    from lalm.adapters import PROJECTORS

    return [(b.name, PROJECTORS.get(b.projector.name)) for b in cfg.model.branches
            if b.trainable and b.projector is not None and b.projector.name in PROJECTORS]


def trained_recognizer(cfg: AlignConfig) -> str | None:
    """The name of the config's recognizer when the kit trains it (objective ctc), else None."""
    from lalm.recognizers import RECOGNIZERS

    r = cfg.model.recognizer
    return r.name if r is not None and r.name in RECOGNIZERS and RECOGNIZERS.get(r.name).trainable else None


@OBJECTIVES.register("lm")
class LanguageModelling(Objective):
    @classmethod
    def check(cls, cfg: AlignConfig) -> list[str]:
        problems = []
        if not trainable_projectors(cfg) and not cfg.model.llm.lora.enabled:
            recognizer = trained_recognizer(cfg)
            if recognizer:
                problems.append(f"train.objective={cfg.train.objective}: only recognizer {recognizer} would train, "
                                "and it writes text, so no LLM-loss gradient reaches it; train it with objective "
                                "ctc, or give a branch a trainable projector")
            else:
                problems.append(f"train.objective={cfg.train.objective}: nothing trains (every branch is frozen "
                                "and LoRA is off)")
        if not cls.teacher and cfg.train.distill_weight:
            problems.append("train.distill_weight is the weight of objective kd; set train.objective=kd")
        if cls is not LabelledLanguageModelling and (cfg.train.label_weight or cfg.train.label_fields
                                                     or cfg.train.answer_margin):
            problems.append("train.label_weight, train.label_fields and train.answer_margin are for objective "
                            "label; set train.objective=label")
        return problems

    def loss(self, model, inputs, batch, cfg):
        out = model(**inputs)
        return out["loss_sum"], out["loss_sum"]


@OBJECTIVES.register("kd")
class Distillation(LanguageModelling):
    teacher = True

    @classmethod
    def check(cls, cfg: AlignConfig) -> list[str]:
        problems = super().check(cfg)
        if cfg.train.distill_weight <= 0:
            problems.append("train.objective=kd needs train.distill_weight > 0 (the KL term's weight)")
        return problems

    def loss(self, model, inputs, batch, cfg):
        # The teacher runs before the student: a forward between the student's forward and its
        # backward would interleave with gradient-checkpointing recomputation.
        teacher = teacher_logits(model, {k: v.to(model.device) for k, v in batch["teacher"].items()})
        out = model(**inputs)
        return out["loss_sum"], out["loss_sum"] + cfg.train.distill_weight * distill_kl(teacher, out["logits"])


@OBJECTIVES.register("label")
class LabelledLanguageModelling(LanguageModelling):
    @classmethod
    def check(cls, cfg: AlignConfig) -> list[str]:
        problems = super().check(cfg)
        if cfg.train.label_weight <= 0:
            problems.append("train.objective=label needs train.label_weight > 0 (the label loss's weight)")
        if not cfg.train.label_fields:
            problems.append("train.objective=label needs train.label_fields: the rows' meta fields to predict, "
                            "e.g. [gender, pace]")
        if cfg.train.answer_margin < 0:
            problems.append(f"train.answer_margin must be >= 0 (nats; 0 is off), got {cfg.train.answer_margin!r}")
        if cfg.train.label_fields and cfg.train.label_weight > 0:
            try:
                label_branches(cfg)
            except ConfigError as err:
                problems += err.problems
        return problems

    @classmethod
    def check_rows(cls, cfg: AlignConfig, rows: list) -> list[str]:
        classes = label_classes(cfg, rows)
        problems = [f"train.label_fields: the training rows' meta.{f} has {len(values)} value(s) {values}; a label "
                    f"needs two or more (or drop {f!r})" for f, values in classes.items() if len(values) < 2]
        if cfg.train.answer_margin and not problems:
            from lalm.llm import load_tokenizer

            tokenizer = load_tokenizer(cfg.model.llm)  # the tokenizer alone: no weights load for this check
            for field, values in classes.items():
                try:
                    class_words(tokenizer, field, values)
                except ConfigError as err:
                    problems += err.problems
        return problems

    def __init__(self, cfg: AlignConfig, rows: list, model):
        super().__init__()
        self.branches = label_branches(cfg)
        self.classes = label_classes(cfg, rows)
        width = sum(model.branches[b].projector.out_dim for b in self.branches)
        self.heads = nn.ModuleDict({f: nn.Linear(width, len(v)) for f, v in self.classes.items()})
        self.index = {f: {v: i for i, v in enumerate(values)} for f, values in self.classes.items()}
        self.margin = cfg.train.answer_margin
        self.words = {f: class_words(model.tokenizer, f, v) for f, v in self.classes.items()} if self.margin else {}
        self.sums = torch.zeros(3)  # label loss x clips, right answers, labelled clips (on the loss's device)
        self.hinge_sum = torch.zeros(())  # the answer-margin loss since the last report

    def report(self):
        sums, self.sums = self.sums.cpu(), torch.zeros(3)
        report = {"label_loss": sums[0], "label_accuracy": sums[1], "n": sums[2]}
        if self.margin:
            report["answer_margin_loss"] = self.hinge_sum.cpu()  # per labelled clip, once divided by n
        self.hinge_sum = torch.zeros(())
        return report

    def targets(self, field: str, meta: list[dict]) -> torch.Tensor:
        """Class index of each clip's `field`, -100 (ignored) where the row has none or an unseen value."""
        index = self.index[field]
        return torch.tensor([index.get(str(m[field]), -100) if m.get(field) is not None else -100 for m in meta])

    def loss(self, model, inputs, batch, cfg):
        out = model(**inputs)
        # The heads see what the LLM sees: the mean of each branch's positions for the clip.
        pooled = torch.cat([mean_position(*out["audio"][b]) for b in self.branches], dim=-1)
        label = pooled.new_zeros((), dtype=torch.float32)
        sums = self.sums.to(pooled.device)
        for field, head in self.heads.items():
            target = self.targets(field, batch["meta"])
            known = target >= 0
            if known.any():  # decided on the host: the targets are built there, so no device sync per batch
                target, known = target.to(pooled.device), known.to(pooled.device)
                logits = head(pooled.float())
                term = F.cross_entropy(logits, target, ignore_index=-100)
                label = label + term
                sums = sums + torch.stack([term.detach() * known.sum(), ((logits.argmax(-1) == target) & known).sum(),
                                           known.sum()]).float()
        # Summed over answer words like the LLM loss over tokens, so it takes the same step normalisation.
        hinge = sum((answer_margin_loss(out["logits"], out["targets"], *self.words[f], self.margin)
                     for f in self.words), out["loss_sum"].new_zeros(()))
        self.sums = sums
        self.hinge_sum = self.hinge_sum.to(hinge.device) + hinge.detach().float()
        # Scaled by the micro-batch's target tokens, because the step divides the summed loss by them.
        return out["loss_sum"], out["loss_sum"] + cfg.train.label_weight * label * batch["num_targets"] + hinge


def label_classes(cfg: AlignConfig, rows: list) -> dict[str, list[str]]:
    """Each label field's classes: the values the training rows' meta holds, sorted."""
    return {f: sorted({str(r.meta[f]) for r in rows if r.meta and r.meta.get(f) is not None})
            for f in cfg.train.label_fields}


def class_words(tokenizer, field: str, values: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(token ids, the class each belongs to) of a label field's answer words: the first token of each
    value written as it would stand in a reply (" female", "female", " Female", "Female").

    A writing whose first tokens do not tell the classes apart (a byte tokenizer's " " before every
    spaced word) is left out; a field no writing tells apart (" fast speech", " fast walking") is a
    config error naming it."""
    owner: dict[int, int] = {}
    for lead in (" ", ""):
        for capital in (False, True):
            words = [v.strip()[:1].upper() + v.strip()[1:] if capital else v.strip() for v in values]
            firsts = [(tokenizer.encode(lead + w, add_special_tokens=False) or [None])[0] for w in words]
            if None in firsts or len(set(firsts)) < len(firsts) or any(owner.get(t, i) != i for i, t in enumerate(firsts)):
                continue  # this writing cannot tell the classes apart by one token
            owner.update({t: i for i, t in enumerate(firsts)})
    if not owner:
        raise ConfigError([(f"train.answer_margin: however they are written, some of meta.{field}'s values {values} "
                            "begin with the same token, so no one token's logit tells them apart; give the classes "
                            "distinct first words, or set train.answer_margin=0")])
    return torch.tensor(list(owner)), torch.tensor(list(owner.values()))


def answer_margin_loss(logits: torch.Tensor, targets: torch.Tensor, ids: torch.Tensor, owner: torch.Tensor,
                       margin: float) -> torch.Tensor:
    """Summed max(0, margin - (logit of the target's class word - best logit of another class's words))
    over the target tokens that are class words. logits [N, vocab] and targets [N] as the model returns."""
    # Masked rather than indexed by the hits, so there is no device sync per batch.
    ids, owner = ids.to(targets.device), owner.to(targets.device)
    match = targets[:, None] == ids[None]  # [N, K]
    own_class = owner[match.float().argmax(-1)]  # [N]; meaningless where nothing matches (masked below)
    right = logits.gather(-1, targets[:, None])[:, 0].float()
    rival = logits[:, ids].float().masked_fill(owner[None] == own_class[:, None], -torch.inf).amax(-1)
    return (torch.relu(margin - (right - rival)) * match.any(-1)).sum()


def label_branches(cfg: AlignConfig) -> list[str]:
    """The branches objective label reads: train.label_branch, or every trainable projector branch."""
    names = [name for name, _ in trainable_projectors(cfg)]
    if cfg.train.label_branch:
        if cfg.train.label_branch not in names:
            raise ConfigError([(f"train.label_branch={cfg.train.label_branch!r} is not a branch with a trainable "
                                f"projector; choose one of {names}")])
        return [cfg.train.label_branch]
    if not names:
        raise ConfigError(["train.objective=label: no branch has a trainable projector for the label heads to read"])
    return names


def mean_position(positions: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """[B, N, D] positions with [B] valid counts -> [B, D], each clip's mean valid position."""
    keep = valid_mask(counts, positions.shape[1]).to(positions.dtype)
    return (positions * keep[..., None]).sum(1) / counts.clamp(min=1)[:, None].to(positions.dtype)


@OBJECTIVES.register("ctc")
class CTC(Objective):
    batch = "ctc"
    trains_recognizer = True

    @classmethod
    def check(cls, cfg: AlignConfig) -> list[str]:
        from lalm.adapters import PROJECTORS
        from lalm.recognizers import RECOGNIZERS

        problems = []
        ctc = [n for n in PROJECTORS.names() if hasattr(PROJECTORS.get(n), "ctc_loss")]
        trained = [n for n in RECOGNIZERS.names() if RECOGNIZERS.get(n).trainable]
        if not trained_recognizer(cfg) and not any(b.projector is not None and b.projector.name in ctc and b.trainable
                                                   for b in cfg.model.branches):
            problems.append(f"train.objective=ctc needs a trained recognizer (model.recognizer.name: "
                            f"{' or '.join(trained)}) or a trainable branch with a CTC projector ({' or '.join(ctc)})")
        if cfg.train.distill_weight:
            problems.append("train.distill_weight is for objective kd (ctc runs no LLM)")
        return problems

    def loss(self, model, inputs, batch, cfg):
        features = model.audio_features(inputs.get("waveforms"), inputs.get("wave_lengths"),
                                        inputs.get("encoder_features"))
        loss = model.ctc_loss(features, batch["ctc_targets"], batch["transcripts"])[0]
        return loss, loss


@torch.no_grad()
def teacher_logits(model, teacher: dict) -> torch.Tensor:
    """The frozen LLM's logits at the target tokens when it reads the transcript instead of the audio."""
    embeds = model.llm.get_input_embeddings()(teacher["input_ids"])
    return model.target_logits(embeds, teacher["attention_mask"], teacher["labels"])


def distill_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """Summed KL(teacher || student) over target tokens. The teacher is the same frozen LLM, so its
    distribution is exact: this is Ultravox's distillation without a separate teacher model."""
    t_logp = F.log_softmax(teacher_logits.float(), dim=-1)
    s_logp = F.log_softmax(student_logits.float(), dim=-1)
    return F.kl_div(s_logp, t_logp, log_target=True, reduction="sum")
