"""Multiple-choice answer extraction from free text, and VoiceBench's MCQ sets (mmsu, openbookqa).

A spoken-answer model rarely replies with a bare letter, so the letter is pulled out of free text
by ordered pattern tiers, the way VoiceBench's MCQ evaluator walks an ordered template list: the
first tier that yields an answer wins, so an explicit "the answer is (B)" beats a letter that is
merely mentioned in the reasoning.

1. explicit statements: "the answer is (B)", "Answer: D) ...", "I would choose C", "B is correct";
   the last one in the text wins, because a model that corrects itself states the final answer last;
2. a leading letter closed by a delimiter: "B.", "(C) ...", "**D**", a bare "b";
3. a marked letter anywhere: "(B)", "[B]", "option B", "sentence B";
4. only when the choice texts are given: exactly one choice text quoted in the response;
5. a standalone letter anywhere: "I think it's c".

Tiers 3-5 must be unambiguous: two different letters there fall through to the next tier and, at
the end, to a miss rather than a guess. A bare "a"/"A" followed by a lowercase word ("a dog",
"A scorpion") is the English article, not choice A. With more than 8 choices the letter "I" would
collide with the pronoun; the benchmarks here have at most 4.

This is ``strict`` mode's reading; ``parity`` mode reads replies as VoiceBench's evaluator does
(``official.mcq_letter``) and guesses where it guesses. ``score_mcq`` reports both.
"""

from __future__ import annotations

import functools
import random
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from . import official
from .common import Item, ScoreResult, get_field, item_id, percent
from .modes import check_mode, two_mode_result, two_mode_summary

LETTERS = string.ascii_uppercase

_OPEN = r"[(\[*\"'“‘]*"
_CLOSE = r"[)\]*\"'”’]*"
_DELIMITER = r"[)\]*\"'”’.:,;!?]"
# Words that can follow the letter "A" but never the article "a": "A or B", "A is correct".
_NOT_AFTER_ARTICLE = r"(?:is|was|are|would|could|should|must|might|seems|appears|or|and|nor|but|because|vs)\b"
_ARTICLE_NEXT = re.compile(rf"\s+(?!{_NOT_AFTER_ARTICLE})[a-z]")


@dataclass(frozen=True)
class _Tiers:
    explicit: tuple[re.Pattern[str], ...]
    leading: re.Pattern[str]
    marked: tuple[re.Pattern[str], ...]
    bare: re.Pattern[str]


@functools.cache
def _tiers(n_choices: int) -> _Tiers:
    """Compiled tier patterns for choices A..(n_choices); group 1 is always the letter."""
    letters = LETTERS[:n_choices]
    cls = f"[{letters}{letters.lower()}]"
    tok = rf"(?<![\w'’]){_OPEN}({cls}){_CLOSE}(?![\w'’])"
    flags = re.IGNORECASE
    return _Tiers(
        explicit=(
            re.compile(
                rf"\b(?:answer|option|choice)\b[^.\n]{{0,40}}?(?:\bis\b|\bbe\b|:|=)\s*"
                rf"(?:(?:option|choice|letter)\s*)?{tok}",
                flags,
            ),
            re.compile(rf"\b(?:choose|select|pick|go with)\s+(?:(?:option|choice|letter)\s*)?{tok}", flags),
            re.compile(rf"{tok}\s+(?:is|would be|seems)\s+(?:the\s+)?(?:correct|right|best)\b", flags),
        ),
        leading=re.compile(rf"^\s*{_OPEN}({cls})(?:{_DELIMITER}|\s*$|\s+[-–—])", flags),
        marked=(
            re.compile(rf"[(\[]({cls})[)\]]", flags),
            re.compile(rf"\b(?:option|choice|sentence)\s*{tok}", flags),
        ),
        bare=re.compile(tok, flags),
    )


def _is_article(text: str, match: re.Match[str]) -> bool:
    """True when the matched letter is a bare "a"/"A" used as the English article."""
    if match.group(1) not in "aA":
        return False
    before, after = text[: match.start(1)], text[match.end(1) :]
    bare = not before.endswith(tuple("([*\"'“‘")) and not re.match(_DELIMITER, after)
    return bare and bool(_ARTICLE_NEXT.match(after))


def _letters(text: str, patterns: Sequence[re.Pattern[str]]) -> list[re.Match[str]]:
    return [m for p in patterns for m in p.finditer(text) if not _is_article(text, m)]


def _unique(matches: Sequence[re.Match[str]]) -> str | None:
    found = {m.group(1).upper() for m in matches}
    return found.pop() if len(found) == 1 else None


def _normalize_words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _match_choice_text(text: str, choices: Sequence[str]) -> int | None:
    """Index of the one choice whose text the response quotes, else None.

    When several choice texts appear and one contains all the others ("hot dog" vs "dog") the
    longest is taken; otherwise the quote is ambiguous.
    """
    padded = f" {_normalize_words(text)} "
    normalized = [_normalize_words(c) for c in choices]
    hits = [i for i, c in enumerate(normalized) if c and f" {c} " in padded]
    if not hits:
        return None
    best = max(hits, key=lambda i: len(normalized[i]))
    return best if all(f" {normalized[i]} " in f" {normalized[best]} " for i in hits) else None


def extract_choice(response: str, choices: int | Sequence[str] = 4) -> str | None:
    """The chosen letter ("A", "B", ...) in ``response``, or None when no tier finds one.

    ``choices`` is the number of options (letters only) or the option texts, which also enables
    matching a quoted option text.
    """
    texts = None if isinstance(choices, int) else list(choices)
    tiers = _tiers(choices if isinstance(choices, int) else len(texts or ()))
    text = response.strip()
    explicit = _letters(text, tiers.explicit)
    if explicit:
        return max(explicit, key=lambda m: m.start(1)).group(1).upper()
    leading = tiers.leading.match(text)
    if leading:
        return leading.group(1).upper()
    marked = _unique(_letters(text, tiers.marked))
    if marked:
        return marked
    if texts:
        index = _match_choice_text(text, texts)
        if index is not None:
            return LETTERS[index]
    return _unique(_letters(text, (tiers.bare,)))


def reference_letter(reference: str, n_choices: int) -> str:
    """A reference such as "B", "(b)" or " b " as an upper-case letter; a bad one raises."""
    letter = reference.strip().strip("()").strip().upper()
    if len(letter) != 1 or letter not in LETTERS[:n_choices]:
        raise ValueError(f"reference {reference!r} is not one of the letters {LETTERS[:n_choices]}")
    return letter


def score_mcq(items: Sequence[Item], *, mode: str = "strict", seed: int = 0) -> ScoreResult:
    """Accuracy (0-100) of letter answers against ``reference`` letters, in both modes.

    ``strict`` reads the letter with ``extract_choice`` and counts a miss wrong; ``parity`` reads it
    as VoiceBench does (``official.mcq_letter``) and, where that finds none, guesses one of A-D from
    ``random.Random(seed)`` in item order, recorded as ``guess`` with ``fallback: true``. ``mode``
    picks the headline ``score``/``pred``; the summary carries both. An item may carry ``choices``
    (the option texts, used by strict mode); otherwise four options A-D are assumed, as in mmsu and
    openbookqa.
    """
    check_mode(mode)
    rng = random.Random(seed)
    results = []
    for index, item in enumerate(items):
        choices = item.get("choices") or 4
        n_choices = choices if isinstance(choices, int) else len(choices)
        reference = reference_letter(str(get_field(item, "reference", "answer")), n_choices)
        response = str(get_field(item, "response"))
        strict = extract_choice(response, choices)
        read = official.mcq_letter(response)
        guess = rng.choice(official.MCQ_GUESSES) if read is None else None
        raw_reference = get_field(item, "reference", "answer")
        results.append(
            two_mode_result(item_id(item, index), reference, strict, read, guess, mode, raw_reference)
        )
    return results, two_mode_summary(results, mode)


def accuracy_summary(results: Sequence[dict], mode: str) -> dict:
    """Score (accuracy, 0-100), counts and miss rate over results with ``correct``/``extracted``."""
    n = len(results)
    return {
        "score": percent(sum(r["correct"] for r in results), n),
        "n": n,
        "n_correct": sum(r["correct"] for r in results),
        "miss_rate": percent(sum(not r["extracted"] for r in results), n),
        "mode": mode,
    }
