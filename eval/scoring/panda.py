"""PANDA for sd-qa: does a free-form spoken reply give the reference answer?

VoiceBench scores sd-qa partly with PANDA (PEDANTS), the answer-equivalence judge of the
``qa-metrics`` package, called as ``PEDANT().evaluate([reference], response, question)`` on
lower-cased text. That package fetches a classifier at run time, which this project cannot count
on, so ``load_pedant()`` wraps it only where it is installed and usable.

``approx_panda`` is the stand-in used otherwise, and it is NOT PANDA: a rule-based approximation in
the spirit of PEDANTS' rules. Both texts are normalised (lower case, punctuation and the articles
a/an/the dropped, number words zero-twenty written as digits); an echo of the question is removed
from the reply so restating the question earns nothing; the reply is correct when it contains the
whole reference as a contiguous token run, or when its token F1 against the reference reaches
``F1_THRESHOLD``. Expect it to be stricter than PANDA on paraphrases and synonyms and looser on
long replies that mention the answer among wrong ones. Summaries record which one ran.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

PandaFn = Callable[[str, str, str], bool]
"""``(response, reference, question) -> is the response correct``."""

F1_THRESHOLD = 0.5
_NUMBER_WORDS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
)
_NUMBERS = {word: str(value) for value, word in enumerate(_NUMBER_WORDS)}


def answer_tokens(text: str) -> list[str]:
    """Normalised tokens: lower case, no punctuation or articles, number words as digits."""
    words = re.findall(r"\w+", text.lower().replace("’", "'"))
    return [_NUMBERS.get(w, w) for w in words if w not in ("a", "an", "the")]


def _find(haystack: Sequence[str], needle: Sequence[str]) -> int:
    """Start index of ``needle`` as a contiguous run in ``haystack``, or -1."""
    n = len(needle)
    return next((i for i in range(len(haystack) - n + 1) if list(haystack[i : i + n]) == list(needle)), -1)


def token_f1(prediction: Sequence[str], reference: Sequence[str]) -> float:
    """SQuAD-style token F1 between two token lists."""
    common = sum((Counter(prediction) & Counter(reference)).values())
    if not common:
        return 0.0
    precision, recall = common / len(prediction), common / len(reference)
    return 2 * precision * recall / (precision + recall)


def approx_panda(response: str, reference: str, question: str = "") -> bool:
    """Rule-based stand-in for PANDA (see the module docstring); True when judged correct."""
    reply, ref, asked = answer_tokens(response), answer_tokens(reference), answer_tokens(question)
    echo = _find(reply, asked) if asked else -1
    if echo >= 0:
        reply = reply[:echo] + reply[echo + len(asked) :]
    if not ref or not reply:
        return False
    return _find(reply, ref) >= 0 or token_f1(reply, ref) >= F1_THRESHOLD


OFFICIAL_QA_METRICS = "0.2.17"
"""The qa-metrics version VoiceBench pins; PANDA's scores moved a lot in later versions."""


def load_pedant(version: str | None = None) -> PandaFn | None:
    """The real PANDA judge from ``qa-metrics``, called as VoiceBench calls it (lower-cased texts);
    None when the package is absent, is not ``version`` (when given), or cannot build its classifier
    (qa-metrics fetches it on first use)."""
    from importlib import metadata

    try:
        installed = metadata.version("qa-metrics")
    except metadata.PackageNotFoundError:
        return None
    if version is not None and installed != version:
        return None
    try:
        from qa_metrics.pedant import PEDANT

        pedant = PEDANT()
    except Exception:  # noqa: BLE001 - any failure to build it means "not available", said by the caller
        return None

    def pedant_panda(response: str, reference: str, question: str) -> bool:
        return bool(pedant.evaluate([reference.lower()], response.lower(), question.lower()))

    pedant_panda.__name__ = f"qa_metrics {installed} PEDANT"
    return pedant_panda


def load_official_pedant() -> PandaFn | None:
    """PANDA exactly as VoiceBench ran it (``qa_metrics==0.2.17``), or None."""
    return load_pedant(OFFICIAL_QA_METRICS)
