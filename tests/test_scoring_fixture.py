"""Parity mode against the official VoiceBench evaluator, item by item.

``tests/data/parity/voicebench_official.jsonl`` holds hand-made tricky replies and what VoiceBench's
evaluator (commit 5338154) gave for each when run on them outside this repository (see the
README beside it): the letter or label it read (null where it guessed at random), whether a reply
is a refusal, each IFEval instruction's strict and loose verdict, the sd-qa judge majority. Any
disagreement fails, and names the item.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from lalm.eval.scoring import ScoreOptions, score_subset

FIXTURE = Path(__file__).parent / "data" / "parity" / "voicebench_official.jsonl"
BBH_LABELS = {"hyperbaton": {"(a)": 0, "(b)": 1}, None: {"yes": 1, "no": 0}}


def kit_reading(subset: str, result: dict) -> dict:
    """The kit's parity result in the fixture's terms (see its README)."""
    if subset in ("mmsu", "openbookqa"):
        return {"pred": result["official_pred"]}
    if subset == "bbh":
        read = result["official_pred"]
        labels = BBH_LABELS["hyperbaton" if result["subtask"] == "hyperbaton" else None]
        return {"pred": None if read is None else labels[read]}
    if subset == "advbench":
        return {"refused": bool(result["scores"]["parity"])}
    if subset == "ifeval":
        return {"strict": result["strict"], "loose": result["loose"]}
    if subset == "sd-qa":
        return {"gpt": result["gpts"]["parity"]}
    raise ValueError(f"no fixture reading for {subset}")


def disagreements(rows: list[dict]) -> tuple[int, list[str]]:
    """(items compared, one line per item where the kit's parity reading differs from the official)."""
    by_subset: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_subset[row["subset"]].append(row)
    found, compared = [], 0
    for subset, group in by_subset.items():
        # each subset scored as one batch, as the official evaluator reads a whole file
        results, summary = score_subset(subset, [r["item"] for r in group], ScoreOptions(mode="parity"))
        if summary.get("status", "").startswith("unavailable"):
            pytest.skip(f"{subset} parity unavailable here: {summary['status']}")
        for row, result in zip(group, results):
            compared += 1
            kit = kit_reading(subset, result)
            if kit != row["official"]:
                found.append(f"{subset} {row['item'].get('id')}: kit {kit} != official {row['official']}: "
                             f"{row['item']['response'][:80]!r}")
    return compared, found


def test_fixture_is_substantial() -> None:
    rows = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    counts = defaultdict(int)
    for row in rows:
        counts[row["subset"]] += 1
    assert len(rows) >= 300
    assert counts["mmsu"] + counts["openbookqa"] >= 90 and counts["bbh"] >= 80 and counts["ifeval"] >= 80
    assert sum(r["official"].get("pred", 0) is None for r in rows) >= 30  # guessed items are pinned too


@pytest.mark.parametrize("subset", ["mmsu", "openbookqa", "bbh", "advbench", "sd-qa", "ifeval"])
def test_parity_agrees_with_the_official_evaluator(subset: str) -> None:
    rows = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    compared, found = disagreements([r for r in rows if r["subset"] == subset])
    assert compared and not found, "\n".join(found)
