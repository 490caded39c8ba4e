"""Repeat-after-me: the model is asked to say back exactly what it heard; scored by word error rate.

Works on any recording with a transcript (a manifest row with `id`, `audio`, `text`), so a user can
check the kit on their own real speech. The reference is the item's `text` (else its `prompt`); the
hypothesis is the reply, or, when the reply wraps the words in one pair of double quotes ('You said:
"..."'), the quoted words, since the lead-in is not a mishearing. The headline `score` is word accuracy,
100 x (1 - corpus WER) floored at 0, so that higher is better like every other score in the summary;
`wer` is the corpus WER itself, and `by_engine` / `by_speaker` / `by_voice` break it down where the
items name an engine (meta.engine), a speaker (`speaker` or meta.speaker) or a voice (meta.voice).
Per item: `wer`, the `repeated` words scored, and in audio mode the model's own transcript as
`heard` (a CTC projector's) with its `heard_wer`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from lalm.wer import word_errors

from .common import Item, ScoreResult, get_field, item_id

#: Asked with every clip (and with the text in text mode, as the cascade asks it with its transcript).
REPEAT_INSTRUCTION = "Repeat exactly what was said, word for word, and say nothing else."
QUOTED = re.compile(r'["\u201c]([^"\u201c\u201d]+)["\u201d]')


def repeated_words(response: str) -> str:
    """The words a reply repeats: the one double-quoted span if there is exactly one, else the reply."""
    spans = QUOTED.findall(response)
    return spans[0] if len(spans) == 1 else response


def _meta(item: Item) -> dict:
    meta = item.get("meta")
    return meta if isinstance(meta, dict) else {}


def groups(item: Item) -> dict[str, Any]:
    """The breakdowns an item belongs to: engine, speaker, voice (where named)."""
    meta = _meta(item)
    named = {"engine": meta.get("engine"), "speaker": item.get("speaker", meta.get("speaker")),
             "voice": meta.get("voice")}
    return {key: str(value) for key, value in named.items() if value not in (None, "")}


def _wer(errors: int, words: int) -> float | None:
    return errors / words if words else None


def score_repeat(items: Sequence[Item]) -> ScoreResult:
    results = []
    totals = [0, 0]
    by: dict[str, dict[str, list[int]]] = {}
    for index, item in enumerate(items):
        reference = str(get_field(item, "text", "prompt"))
        said = repeated_words(str(get_field(item, "response")))
        errors, words = word_errors(reference, said)
        result: dict[str, Any] = {"id": item_id(item, index), "wer": _wer(errors, words), "errors": errors,
                                  "words": words, "repeated": said}
        transcript = item.get("eval_transcript")
        if transcript is not None and item.get("eval_mode") == "audio":  # the model's own, not an ASR's
            result["heard"] = transcript
            result["heard_wer"] = _wer(*word_errors(reference, transcript))
        results.append(result)
        totals[0] += errors
        totals[1] += words
        for key, value in groups(item).items():
            tally = by.setdefault(key, {}).setdefault(value, [0, 0, 0])
            tally[0], tally[1], tally[2] = tally[0] + errors, tally[1] + words, tally[2] + 1
    wer = _wer(*totals)
    summary: dict[str, Any] = {
        "score": None if wer is None else max(0.0, 100.0 * (1.0 - wer)),
        "wer": wer,
        "n": len(results),
        "words": totals[1],
    }
    for key, tallies in by.items():
        summary[f"by_{key}"] = {name: {"wer": _wer(e, w), "n": n} for name, (e, w, n) in sorted(tallies.items())}
    return results, summary
