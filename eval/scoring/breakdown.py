"""Accuracy per group of items (the engine that spoke a clip, the kind of question asked), for any
scorer whose per-item results say `correct`: a set mixing TTS engines or question kinds then shows
where a model hears well and where it does not, not one average."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Group keys, read from an item's fields: `meta.engine` (data_gen.synthesize records it) and `field`
#: (the voice question asked, data_gen.voice_qa).
GROUPS = ("engine", "field")


def group_of(fields: dict, key: str) -> str | None:
    meta = fields.get("meta") if isinstance(fields.get("meta"), dict) else {}
    value = fields.get(key, meta.get(key))
    return None if value in (None, "") else str(value)


def accuracy_by_group(fields: Sequence[dict], results: Sequence[dict]) -> dict[str, Any]:
    """{"by_engine": {name: {"score", "n"}}, ...} for the groups the items name; {} if none or no `correct`."""
    out: dict[str, Any] = {}
    if not results or not all(isinstance(r.get("correct"), bool) for r in results):
        return out
    for key in GROUPS:
        tallies: dict[str, list[int]] = {}
        for item, result in zip(fields, results):
            name = group_of(item, key)
            if name is not None:
                tally = tallies.setdefault(name, [0, 0])
                tally[0], tally[1] = tally[0] + int(result["correct"]), tally[1] + 1
        if tallies:
            out[f"by_{key}"] = {name: {"score": 100.0 * c / n, "n": n} for name, (c, n) in sorted(tallies.items())}
    return out
