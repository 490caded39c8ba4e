"""VoiceBench's bbh set: four BIG-Bench Hard subtasks answered by voice.

VoiceBench's bbh has ``navigate``, ``sports_understanding`` and ``web_of_lies`` (references "yes" /
"no") and ``hyperbaton`` (references "(A)" / "(B)"); the subtask is named inside the item ``id``.
Its evaluator lower-cases the reply, strips chat tokens and markdown, then tries, in order, generic
yes/no answer phrases ("the answer is no", "final answer yes", "the answer is \\boxed{true}"),
subtask phrases ("you return to the starting point", "the sentence is not plausible",
"X tells the truth"), and last a reply that starts, then one that ends, with yes/no; a miss
becomes a random pick. ``parity`` mode applies that hand-collected list as is (``official``);
``strict`` mode, below, keeps the order with general patterns instead, and does not copy two of
the list's quirks: it maps a bare "b" to (A) and "the sentence ... is not plausible" to yes. Within a tier the phrase that ends last wins, because
the conclusion closes the reasoning; of two ending together the longer wins ("not ... plausible"
over "plausible"). Hyperbaton is a two-option multiple-choice question and uses the MCQ extractor.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from . import official
from .common import Item, ScoreResult, get_field, item_id
from .mcq import extract_choice
from .modes import check_mode, two_mode_result, two_mode_summary

SUBTASKS = ("navigate", "sports_understanding", "hyperbaton", "web_of_lies")
_LABELS = {
    "navigate": ("yes", "no"),
    "sports_understanding": ("yes", "no"),
    "web_of_lies": ("yes", "no"),
    "hyperbaton": ("(a)", "(b)"),
}

_NOT = r"(?:\bnot|\bnever|\bcannot|n't)\b"
_START = (
    r"(?:(?:to|at)\s+(?:the|your|our|my)\s+(?:original\s+|exact\s+|initial\s+)?"
    r"start(?:ing)?\s*(?:point|position|location)|where\s+(?:you|we|i)\s+(?:started|began))"
)
_ANSWER = re.compile(
    r"\b(?:answer|conclusion)\b(?:\s+to\s+(?:the|this|your)\s+(?:original\s+)?question)?[\s:,]*"
    r"(?:(?:is|would be|should be|as)\b)?[\s:,]*(?:(?:without any modification|directly)[\s:,]*)?"
    r"(yes|no|true|false)\b"
)
# Subtask phrases: (pattern meaning "no", pattern meaning "yes"); the last-ending, longest match wins.
_PHRASES = {
    "navigate": (
        rf"{_NOT}(?:\s+\w+){{0,4}}?\s+{_START}",
        rf"\b(?:return\w*|back|end(?:s|ed)?\s+up|arriv\w*)\b(?:\s+\w+){{0,3}}?\s+{_START}",
    ),
    "sports_understanding": (
        rf"\bimplausible\b|\bunlikely\b|{_NOT}(?:\s+\w+){{0,3}}?\s+(?:plausible|possible|realistic)\b",
        r"\b(?:plausible|realistic)\b",
    ),
    "web_of_lies": (
        (
            rf"\b(?:lies|lying|lied)\b|\btells?\s+(?:a|the)\s+lie\b"
            rf"|{_NOT}(?:\s+\w+){{0,2}}?\s+tell\w*\s+the\s+truth\b"
        ),
        r"\b(?:tells|telling|told)\s+the\s+truth\b",
    ),
}
_PHRASE_PATTERNS = {
    task: ((re.compile(no), "no"), (re.compile(yes), "yes")) for task, (no, yes) in _PHRASES.items()
}
_EDGE_YES_NO = (re.compile(r"^(yes|no)\b"), re.compile(r"\b(yes|no)\W*$"))


def subtask_of(item: Item) -> str:
    """The item's subtask: its ``subtask`` field, else the subtask name inside its ``id``."""
    if item.get("subtask"):
        return str(item["subtask"])
    found = [name for name in SUBTASKS if name in str(item.get("id", ""))]
    if len(found) != 1:
        raise ValueError(
            f"cannot tell the bbh subtask of item id {item.get('id')!r}; expected one of {SUBTASKS}"
        )
    return found[0]


def _normalize(response: str) -> str:
    """Lower-case, drop chat tokens, markdown, quotes and LaTeX boxing, collapse whitespace."""
    text = response.lower().replace("’", "'").replace("‘", "'")
    text = re.sub(r"<\|[^|>]*\|>|^\s*<\d>", " ", text)
    text = re.sub(r"\\(?:boxed|text)\{|[*\"“”${}：]", " ", text)
    return " ".join(text.split())


def _last_longest(matches: list[tuple[re.Match[str], str]]) -> str | None:
    if not matches:
        return None
    return max(matches, key=lambda ml: (ml[0].end(), -ml[0].start()))[1]


def extract_bbh(response: str, subtask: str) -> str | None:
    """The answer label ("yes"/"no", or "(a)"/"(b)" for hyperbaton) in ``response``, or None."""
    if subtask == "hyperbaton":
        letter = extract_choice(response, 2)
        return f"({letter.lower()})" if letter else None
    if subtask not in _PHRASE_PATTERNS:
        raise ValueError(f"unknown bbh subtask {subtask!r}; expected one of {SUBTASKS}")
    text = _normalize(response)
    explicit = [(m, "no" if m.group(1) in ("no", "false") else "yes") for m in _ANSWER.finditer(text)]
    phrases = [(m, label) for pattern, label in _PHRASE_PATTERNS[subtask] for m in pattern.finditer(text)]
    for tier in (explicit, phrases):
        label = _last_longest(tier)
        if label:
            return label
    for edge in _EDGE_YES_NO:
        match = edge.search(text)
        if match:
            return match.group(1)
    return None


def score_bbh(items: Sequence[Item], *, mode: str = "strict", seed: int = 0) -> ScoreResult:
    """Accuracy (0-100) overall and per subtask, in both modes; see ``mcq.score_mcq`` for ``mode``.

    Parity reads each reply with VoiceBench's phrase list (``official.bbh_label``) and guesses
    "yes"/"no" ("(a)"/"(b)") from ``random.Random(seed)`` in item order where that finds nothing.
    """
    check_mode(mode)
    rng = random.Random(seed)
    results = []
    for index, item in enumerate(items):
        subtask = subtask_of(item)
        labels = _LABELS[subtask]
        reference = str(get_field(item, "reference", "answer")).strip().lower()
        if reference not in labels:
            raise ValueError(f"bbh {subtask} reference {reference!r} is not one of {labels}")
        response = str(get_field(item, "response"))
        code = official.bbh_label(response, subtask)
        # The official 1/0 means yes/no, or (b)/(a) for hyperbaton: labels are (yes, no) / ((a), (b)).
        read = None if code is None else (labels[code] if subtask == "hyperbaton" else labels[1 - code])
        guess = rng.choice(labels) if read is None else None
        result = two_mode_result(
            item_id(item, index), reference, extract_bbh(response, subtask), read, guess, mode
        )
        results.append({**result, "subtask": subtask})
    summary = two_mode_summary(results, mode)
    summary["subtasks"] = {
        name: two_mode_summary([r for r in results if r["subtask"] == name], mode)
        for name in SUBTASKS
        if any(r["subtask"] == name for r in results)
    }
    return results, summary
