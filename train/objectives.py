"""Training objectives as components: the config names one (`train.objective`), it checks the model
the config describes before any weights load, and it computes a micro-batch's loss.

- `lm`: the frozen LLM's cross-entropy on the target tokens, through the audio positions.
- `kd`: `lm` plus `train.distill_weight` x KL to the same frozen LLM reading the row's transcript
  (Ultravox's distillation: the teacher is exact, since it is the student's own LLM).
- `ctc`: CTC with no LLM forward (an ASR stage; the target is the transcript): a trained recognizer
  (`phoneme_ctc`) on the transcript's text, a `ctc` projector on its tokens.

Something must train: a trained recognizer writes text, so no LLM-loss gradient reaches it, and
`lm`/`kd` with nothing else trainable is a config error, not an idle run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F

from lalm.registry import Registry

if TYPE_CHECKING:
    from lalm.train.config import AlignConfig


class Objective:
    """One way to turn a batch into a loss. `batch` says what BatchLoader builds for it (`lm` or `ctc`
    inputs) and `teacher` whether rows also carry the transcript-reading teacher's prompt."""

    batch: ClassVar[str] = "lm"
    teacher: ClassVar[bool] = False
    #: Whether it trains a trained recognizer (its head is in the optimiser only then).
    trains_recognizer: ClassVar[bool] = False

    @classmethod
    def check(cls, cfg: AlignConfig) -> list[str]:
        """Problems with using this objective on the model `cfg` describes (config time, no weights)."""
        return []

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
        if cls is LanguageModelling and cfg.train.distill_weight:
            problems.append("train.distill_weight is the weight of objective kd; set train.objective=kd")
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
