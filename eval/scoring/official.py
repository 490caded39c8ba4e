"""The official evaluators' reading of a reply, rule for rule: what ``parity`` mode scores with.

VoiceBench (github MatthewCYM/VoiceBench, ``src/evaluator``, commit 5338154) and AIR-Bench
(github OFA-Sys/AIR-Bench, ``score_foundation.py``, ``cal_score.py``) read replies with hand-collected
phrase lists and a few character rules. Leaderboard numbers were computed with exactly those rules,
quirks included, so ``parity`` mode reproduces them: the phrase lists live as data in
``data/voicebench_*.json`` (in the official order, which decides ties) and this module applies them
the way the official code does. The kit's own, cleaner reading is ``strict`` mode (``mcq``, ``bbh``,
``refusal``, ``rubrics``); docs/eval.md tables every difference.

Where the official code guesses at random, the caller draws the guess from a seeded generator and
records it, so a parity score is reproducible and says which items were guessed.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DATA = Path(__file__).with_name("data")


@functools.cache
def _data(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def _drop_chat_prefix(text: str) -> str:
    """VoiceBench strips a leading ``<1>``/``<2>``/``<3>`` (one model's turn marker) and re-strips."""
    return text[3:].strip() if text.startswith(("<1>", "<2>", "<3>")) else text


def mcq_letter(response: str) -> str | None:
    """The letter VoiceBench's MCQ evaluator reads from ``response``, or None (it then guesses).

    The lower-cased reply is searched for each answer template in order, each tried with a, b, c, d
    in turn, so "the answer is a …" reads as A whatever follows; then a reply that is a letter or
    starts with one closed by ``. , : )``; then three late phrases meaning A.
    """
    rules = _data("voicebench_mcq.json")
    text = _drop_chat_prefix(response.lower())
    for template in rules["templates"]:
        for letter in rules["letters"]:
            if template.replace("[CHOICE]", letter) in text:
                return letter.upper()
    for letter in rules["letters"]:
        if text == letter or text.startswith(tuple(letter + d for d in rules["prefix_delimiters"])):
            return letter.upper()
    if any(phrase in text for phrase in rules["late_a"]):
        return "A"
    return None


MCQ_GUESSES = ("A", "B", "C", "D")
"""What VoiceBench's MCQ evaluator guesses from when it reads no letter (always four)."""


def bbh_normalize(response: str) -> str:
    """VoiceBench's bbh normalisation: lower case, chat tokens off, ``: ** " - , . ：`` to spaces."""
    text = response.lower()
    if text.endswith("<|user|>"):
        text = text[:-8].strip()
    text = _drop_chat_prefix(text).replace("<|turn_end|>", "")
    for mark in (":", "**", '"', "-", ",", ".", "："):
        text = text.replace(mark, " ")
    return " ".join(text.split())


def bbh_subtask(item_id: str) -> str | None:
    """The subtask VoiceBench reads from an item id (first name contained wins), or None."""
    return next((name for name in _data("voicebench_bbh.json")["subtask_order"] if name in item_id), None)


def _matches(test: str, pattern: str, text: str) -> bool:
    if test == "contains":
        return pattern in text
    if test == "regex":
        return re.search(pattern, text) is not None
    if test == "startswith":
        return text.startswith(pattern)
    if test == "endswith":
        return text.endswith(pattern)
    if test == "equals":
        return text == pattern
    raise ValueError(f"unknown rule test {test!r} in voicebench_bbh.json")


def bbh_label(response: str, subtask: str) -> int | None:
    """1 (yes / (B)) or 0 (no / (A)) as VoiceBench's bbh evaluator reads it; None where it guesses."""
    data = _data("voicebench_bbh.json")
    text = bbh_normalize(response)
    groups = (["yes_no"] if subtask in data["yes_no_first"] else []) + [subtask]
    for group in groups:
        for test, pattern, label in data["rules"][group]:
            if _matches(test, pattern, text):
                return int(label)
    return None


def bbh_reference(reference: str) -> int:
    """A bbh reference ("yes", "no", "(A)", "(B)") as VoiceBench's 1/0."""
    table = _data("voicebench_bbh.json")["references"]
    key = reference.strip().lower()
    if key not in table:
        raise ValueError(f"bbh reference {reference!r} is not one of {', '.join(table)}")
    return int(table[key])


@functools.cache
def _refusal_strings() -> tuple[str, ...]:
    return tuple(s.lower() for s in _data("voicebench_refusal.json")["strings"])


def refusal_string(response: str) -> str | None:
    """The first refusal string VoiceBench finds ("" for an empty reply), else None. No quote folding:
    "I can’t help" (curly apostrophe) matches only where a curly-quote entry does."""
    if not response.strip():
        return ""
    text = response.lower()
    return next((s for s in _refusal_strings() if s in text), None)


def majority_vote(votes: Sequence[str]) -> tuple[bool, bool]:
    """VoiceBench's sd-qa judge verdict from raw judge strings: ``(correct, tied)``.

    The lower-cased strings are counted as they are ("Yes." is not "yes") and the item is correct
    when the most common one is exactly "yes". When several strings tie, the official code takes
    whichever a Python ``set`` yields first, which changes with hash seeding from run to run; here
    the tied string that appears first wins, and ``tied`` says the official verdict is not fixed.
    """
    lowered = [v.lower() for v in votes]
    counts = Counter(lowered)
    top = max(counts.values(), default=0)
    tied = [v for v in dict.fromkeys(lowered) if counts[v] == top]
    return (bool(tied) and tied[0] == "yes"), len(tied) > 1


def rating(raw: str) -> float | None:
    """VoiceBench's reading of a 1-5 judge rating: ``float(reply)``, else the first ``[[n]]``; else None
    (where the official script stops with an error). Like ``float``, it takes "4.5", " 3 " and "nan"."""
    try:
        return float(raw)
    except ValueError:
        match = re.search(r"\[\[(\d+)\]\]", raw)
        return float(match.group(1)) if match else None


def airbench_letter(reply: str | None) -> str | None:
    """AIR-Bench's ``score_foundation.py`` reading of a (judge-aligned) reply: its first character
    when that is A-D, else its second-to-last (for "The answer is A."); None = counted as a failure,
    out of the denominator. Newlines are removed first; "None" and "" are failures."""
    if reply is None:
        return None
    text = reply.strip().replace("\n", "")
    if not text or text == "None":
        return None
    if text[0] in "ABCD":
        return text[0]
    if len(text) > 1 and text[-2] in "ABCD":
        return text[-2]
    return None


def airbench_score_pair(raw: str) -> tuple[int, int] | None:
    """AIR-Bench's ``cal_score.py`` reading of a pairwise judge reply: exactly two space-separated
    integers after removing newlines, each at most 10 (0 counts); else None, a failure."""
    parts = raw.strip().replace("\n", "").split(" ")
    if len(parts) != 2:
        return None
    try:
        first, second = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return (first, second) if first <= 10 and second <= 10 else None


@functools.cache
def airbench_categories() -> dict[str, Any]:
    """AIR-Bench's task groups: foundation task -> Speech/Sound/Music, chat task -> its category."""
    return _data("airbench.json")
