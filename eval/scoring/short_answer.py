"""Spoken short-answer QA (the offline demo's factual questions): a reply is right when it contains
one of the item's acceptable answers as whole words, case- and punctuation-insensitively.

Containment rather than equality because chat models answer in sentences ("The capital of France is
Paris."); whole words so that "ten" does not match "often". The matched answer is recorded per item
so every score can be audited.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .common import Item, ScoreResult, get_field, item_id, percent


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def matched_answer(response: str, answers: Sequence[str]) -> str | None:
    """The first acceptable answer found in the response as whole words, else None."""
    reply = f" {normalise(response)} "
    for answer in answers:
        wanted = normalise(answer)
        if wanted and f" {wanted} " in reply:
            return answer
    return None


def score_short_answer(items: Sequence[Item]) -> ScoreResult:
    """Accuracy (0-100) over items with `answers` (a list) or a single `reference`."""
    results = []
    for index, item in enumerate(items):
        answers = get_field(item, "answers", "reference")
        answers = [str(a) for a in answers] if isinstance(answers, list) else [str(answers)]  # 42 is "42"
        match = matched_answer(str(get_field(item, "response")), answers)
        results.append({"id": item_id(item, index), "correct": match is not None, "matched": match})
    n = len(results)
    return results, {"score": percent(sum(r["correct"] for r in results), n), "n": n}


def named_label(response: str, labels: Sequence[str]) -> str | None:
    """The label a reply names first, as whole words ("female" is not "male"); None if it names none."""
    reply = f" {normalise(response)} "
    found = [(reply.find(f" {normalise(label)} "), label) for label in labels if normalise(label)]
    found = [(at, label) for at, label in found if at >= 0]
    return min(found)[1] if found else None


def score_label_choice(items: Sequence[Item]) -> ScoreResult:
    """Classification asked as a question ("Is the speaker male or female?"): accuracy (0-100) of the
    label the reply names first among the item's `choices`; a reply naming none counts wrong (`miss`)."""
    results = []
    for index, item in enumerate(items):
        choices = [str(c) for c in get_field(item, "choices")]
        named = named_label(str(get_field(item, "response")), choices)
        reference = str(get_field(item, "reference"))
        results.append({"id": item_id(item, index), "correct": named == reference, "named": named,
                        "miss": named is None})
    n = len(results)
    return results, {"score": percent(sum(r["correct"] for r in results), n), "n": n,
                     "miss_rate": percent(sum(r["miss"] for r in results), n)}
