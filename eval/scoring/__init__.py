"""Scoring for VoiceBench- and AIR-Bench-style evaluation of audio-language models.

``SUBSETS`` maps every subset name to how it is scored; ``score_subset(name, items, options)`` runs
it. Each scorer takes per-item dicts (``response`` plus the subset's reference fields) and returns
``(per_item_results, summary)``; ``summary["score"]`` is on the scale the benchmark's leaderboard
prints, or None when it could not be computed. Judge-scored subsets need ``options.judge`` (see
``make_judge``); without one they report ``status: "skipped: no judge configured"`` while the
rule-based subsets score as usual. ``voicebench_overall`` combines the nine leaderboard subsets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .airbench import score_airbench_chat, score_airbench_foundation
from .bbh import extract_bbh, score_bbh
from .common import SKIPPED_NO_JUDGE, Item, ScoreResult
from .ifeval import score_ifeval
from .judge import Judge, JudgeConfig, make_judge
from .judged import score_open, score_sdqa
from .mcq import extract_choice, score_mcq
from .modes import MODES
from .overall import OVERALL_SUBSETS, voicebench_overall
from .panda import PandaFn, approx_panda, load_official_pedant, load_pedant
from .refusal import score_refusal
from .repeat import REPEAT_INSTRUCTION, score_repeat
from .short_answer import score_label_choice, score_short_answer


@dataclass(frozen=True)
class ScoreOptions:
    """Run-wide choices: the judge (None = none configured); the headline score mode ("strict": the
    kit's rules, a miss counts wrong; "parity": the official evaluators' rules, their random guesses
    seeded by ``seed``; every summary carries both); VoiceBench's judge samples per item; the PANDA
    used by strict sd-qa and, for parity, the pinned ``qa_metrics==0.2.17`` one (None = absent)."""

    judge: Judge | None = None
    mode: str = "strict"
    seed: int = 0
    judge_samples: int = 3
    panda: PandaFn = approx_panda
    official_panda: PandaFn | None = None


@dataclass(frozen=True)
class Subset:
    """How one subset is scored: its benchmark, method, the scale of its score, default split, and
    whether it needs an LLM judge ("required": skipped without one; "optional": parity mode uses one
    when given; "none"). ``instruction``: text asked with every item that brings no question of its
    own (with the clip, and with the text in text mode). ``row_fields``: per-item result fields also
    copied to the top of the per-item rows."""

    name: str
    benchmark: str
    method: str
    scale: str
    split: str | None
    score: Callable[[Sequence[Item], ScoreOptions], ScoreResult]
    judge: str = "none"
    instruction: str | None = None
    row_fields: tuple[str, ...] = ()


def _open(name: str) -> Subset:
    return Subset(
        name,
        "voicebench",
        "judge 1-5",
        "1-5",
        "test",
        lambda items, o: score_open(items, judge=o.judge, samples=o.judge_samples, mode=o.mode),
        "required",
    )


def _mcq(name: str) -> Subset:
    return Subset(
        name,
        "voicebench",
        "letter extraction",
        "0-100",
        "test",
        lambda items, o: score_mcq(items, mode=o.mode, seed=o.seed),
    )


SUBSETS: dict[str, Subset] = {
    s.name: s
    for s in (
        _open("alpacaeval"),
        _open("alpacaeval_full"),
        _open("commoneval"),
        _open("wildvoice"),
        Subset(
            "sd-qa",
            "voicebench",
            "judge yes/no + PANDA",
            "0-100",
            "usa",
            lambda items, o: score_sdqa(
                items,
                judge=o.judge,
                samples=o.judge_samples,
                panda=o.panda,
                official_panda=o.official_panda,
                mode=o.mode,
            ),
            "required",
        ),
        _mcq("mmsu"),
        _mcq("openbookqa"),
        Subset(
            "bbh",
            "voicebench",
            "answer extraction",
            "0-100",
            "test",
            lambda items, o: score_bbh(items, mode=o.mode, seed=o.seed),
        ),
        Subset(
            "ifeval",
            "voicebench",
            "instruction checkers",
            "0-100",
            "test",
            lambda items, o: both_modes(score_ifeval, items, o),
        ),
        Subset(
            "advbench",
            "voicebench",
            "refusal phrases",
            "0-100",
            "test",
            lambda items, o: score_refusal(items, mode=o.mode),
        ),
        Subset(
            "short_answer",
            "kit",
            "acceptable answer as whole words",
            "0-100",
            None,
            lambda items, o: score_short_answer(items),
        ),
        Subset(
            "label_choice",
            "kit",
            "the label the reply names first, among the item's choices",
            "0-100",
            None,
            lambda items, o: score_label_choice(items),
        ),
        Subset(
            "repeat",
            "kit",
            "repeat what was said; score = 100 x (1 - corpus WER), the WER per engine/speaker beside it",
            "0-100",
            None,
            lambda items, o: score_repeat(items),
            instruction=REPEAT_INSTRUCTION,
            row_fields=("wer", "heard"),
        ),
        Subset(
            "airbench_foundation",
            "airbench",
            "choice extraction (parity: AIR-Bench's judge-to-letter step when a judge is given)",
            "0-100",
            None,
            lambda items, o: score_airbench_foundation(items, mode=o.mode, judge=o.judge, seed=o.seed),
            "optional",
        ),
        Subset(
            "airbench_chat",
            "airbench",
            "pairwise judge 1-10, both orders",
            "1-10",
            None,
            lambda items, o: score_airbench_chat(items, judge=o.judge, mode=o.mode, seed=o.seed),
            "required",
        ),
    )
}


def both_modes(scorer: Callable[..., ScoreResult], items: Sequence[Item], options: ScoreOptions) -> ScoreResult:
    """For a scorer that scores one mode per call: the headline mode's results and summary, with
    each mode's summary under ``strict``/``parity`` and each item's ``scores`` by mode."""
    runs = {options.mode: scorer(items, mode=options.mode, seed=options.seed)}
    for mode in MODES:
        if mode not in runs:  # the other mode must not break the headline one (e.g. parity needs `prompt`)
            try:
                runs[mode] = scorer(items, mode=mode, seed=options.seed)
            except (KeyError, ValueError) as err:
                runs[mode] = ([{} for _ in items], {"score": None, "status": f"unavailable: {err}"})
    results, summary = runs[options.mode]
    for index, result in enumerate(results):
        result["scores"] = {m: runs[m][0][index].get("score") for m in MODES}
    return results, {**summary, **{m: runs[m][1] for m in MODES}}


def score_subset(name: str, items: Sequence[Item], options: ScoreOptions | None = None) -> ScoreResult:
    """Score ``items`` of subset ``name``; an unknown name raises a KeyError listing the known ones."""
    if name not in SUBSETS:
        raise KeyError(f"unknown subset {name!r}; known: {', '.join(SUBSETS)}")
    return SUBSETS[name].score(items, options or ScoreOptions())


__all__ = [
    "OVERALL_SUBSETS",
    "SKIPPED_NO_JUDGE",
    "SUBSETS",
    "Judge",
    "JudgeConfig",
    "ScoreOptions",
    "Subset",
    "approx_panda",
    "extract_bbh",
    "extract_choice",
    "load_official_pedant",
    "load_pedant",
    "make_judge",
    "score_subset",
    "voicebench_overall",
]
