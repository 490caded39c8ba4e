"""The two scoring modes every two-mode scorer shares (mcq, bbh, airbench, judged sets, refusal).

``strict`` is the kit's own reading of a reply; ``parity`` reads it exactly as the official benchmark
code does, guesses included. A scorer computes both per item (``two_mode_result``) and summarises both
(``two_mode_summary``); ``mode`` picks the headline.
"""

from __future__ import annotations

from collections.abc import Sequence

from .common import percent

MODES = ("strict", "parity")


def check_mode(mode: str) -> None:
    """Reject a misspelt mode early; a silent default would change what the score means."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def two_mode_result(
    key: object,
    reference: object,
    strict: object,
    read: object,
    guess: object,
    mode: str,
    official_reference: object = None,
) -> dict:
    """One item scored both ways: the strict answer, the official reading (None where it finds
    none) and the official guess for that case (None where the official code makes none: then the
    item scores None in parity, a failure out of the denominator). ``pred``, ``extracted``,
    ``correct`` and ``score`` follow ``mode``. ``official_reference`` is the reference as the official
    code compares it, when that differs from the kit's normalised one (VoiceBench compares the raw
    ``reference`` string: a "b" there is never matched)."""
    parity = read if read is not None else guess
    target = reference if official_reference is None else official_reference
    scores = {"strict": int(strict == reference), "parity": None if parity is None else int(parity == target)}
    return {
        "id": key,
        "reference": reference,
        "pred": strict if mode == "strict" else parity,
        "extracted": (strict if mode == "strict" else read) is not None,
        "correct": bool(scores[mode]),
        "score": scores[mode],
        "strict_pred": strict,
        "official_pred": read,
        "fallback": read is None and guess is not None,
        "guess": guess,
        "scores": scores,
    }


def two_mode_summary(results: Sequence[dict], mode: str) -> dict:
    """Accuracy in both modes (0-100), the strict miss rate and the parity guess rate; ``score`` is
    ``mode``'s. Results need ``scores``, ``strict_pred`` and ``fallback`` (see ``two_mode_result``)."""
    n = len(results)
    strict = {
        "score": percent(sum(r["scores"]["strict"] for r in results), n),
        "miss_rate": percent(sum(r["strict_pred"] is None for r in results), n),
    }
    parity = {
        "score": percent(sum(r["scores"]["parity"] for r in results), n),
        "n_fallback": sum(r["fallback"] for r in results),
        "fallback_rate": percent(sum(r["fallback"] for r in results), n),
    }
    headline = strict if mode == "strict" else parity
    return {
        "score": headline["score"],
        "mode": mode,
        "n": n,
        "n_correct": sum(r["scores"][mode] for r in results),
        "miss_rate": strict["miss_rate"],
        "strict": strict,
        "parity": parity,
    }
