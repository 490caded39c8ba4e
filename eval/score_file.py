"""Score replies that were generated elsewhere: ``python eval/voicebench.py --score-file``.

The way VoiceBench's own ``evaluate.py`` is used: any system's replies, one JSONL row per item with
the reply in ``response`` and the subset's reference fields named as in the official data
(``reference`` for mmsu/openbookqa/bbh/sd-qa, the bbh subtask inside ``id``,
``instruction_id_list``/``kwargs``/``prompt`` for ifeval, nothing more for advbench). The files
VoiceBench's ``main.py`` writes are such files, and so are those of its ``api_judge.py``, whose
``score`` lists (the judge's raw replies) are then read instead of asking a judge. VoiceBench's
evaluator names (mcq, bbh, harm, ifeval, qa, open) are accepted as subset names.

Bad rows (not JSON, not an object, no string ``response``, bad bytes) are reported with file, line
and reason and skipped; bad reference fields stop the run with a DataError naming the file. Writes
``DIR/<subset>.scores.jsonl`` (one row per item: ``id``, ``line``, ``score``, ``fallback`` where a
parity guess was made, the extracted ``answer``, then the scorer's full result) and
``DIR/<subset>.summary.json`` (both modes, always), each atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lalm import console
from lalm.eval.items import DataError
from lalm.eval.scoring import SUBSETS, ScoreOptions, score_subset
from lalm.jsonl import write_json_atomic, write_jsonl_atomic

#: VoiceBench's evaluator names -> the kit subset scored the same way.
OFFICIAL_EVALUATORS = {"mcq": "mmsu", "harm": "advbench", "qa": "sd-qa", "open": "commoneval"}


def subset_name(name: str) -> str:
    """A kit subset name for ``name`` (a kit name or a VoiceBench evaluator name); else DataError."""
    name = OFFICIAL_EVALUATORS.get(name, name)
    if name not in SUBSETS:
        known = ", ".join([*SUBSETS, *OFFICIAL_EVALUATORS])
        raise DataError(f"unknown subset {name!r} for --score-file; known: {known}")
    return name


def read_replies(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(items, rejects)``: each usable row with its line number under ``_line``, and each bad line
    as ``{"file", "line", "reason"}``."""
    if not path.is_file():
        raise DataError(f"--score-file {path}: no such file")
    items, rejects = [], []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            reason, row = None, None
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as err:
                reason = f"not UTF-8 ({err.reason} at byte {err.start})"
            except json.JSONDecodeError as err:
                reason = f"not valid JSON ({err.msg} at column {err.colno})"
            if isinstance(row, list) and row and isinstance(row[0], dict):
                row = row[0]  # VoiceBench's ifeval reader takes a list row's first element too
            if reason is None and not isinstance(row, dict):
                reason = f"a JSON {type(row).__name__}, not an object"
            elif reason is None and not isinstance(row.get("response"), str):
                reason = "no string `response` (the reply to score)"
            if reason:
                rejects.append({"file": str(path), "line": number, "reason": reason})
            else:
                items.append({**row, "_line": number})
    return items, rejects


def _answer(result: dict[str, Any]) -> Any:
    """The extracted answer a per-item row shows: the letter/label, the matched refusal phrase, or
    the per-instruction verdicts; None where the scorer extracts nothing (judged sets)."""
    for key in ("pred", "matched", "strict"):
        if key in result:
            return result[key]
    return None


def score_replies(path: Path, subset: str, options: ScoreOptions, out: Path) -> dict[str, Any]:
    """Score one file of replies as ``subset``; write per-item rows and the summary under ``out``."""
    name = subset_name(subset)
    items, rejects = read_replies(path)
    for reject in rejects:
        console.skipped(f"{reject['file']}:{reject['line']}", reject["reason"])
    if not items:
        raise DataError(f"--score-file {path}: no usable rows ({len(rejects)} rejected)")
    for item in items:  # VoiceBench's ifeval rows carry `key`, some sets no id at all
        item.setdefault("id", item.get("key", f"line{item['_line']}"))
    try:
        results, summary = score_subset(name, items, options)
    except (KeyError, ValueError) as err:
        raise DataError(f"{path}: scoring as {name} failed: {err}") from err
    rows = []
    for item, result in zip(items, results):
        row = {"id": item["id"], "line": item["_line"], "score": result.get("score")}
        if "fallback" in result:
            row["fallback"] = result["fallback"] and options.mode == "parity"
        row["answer"] = _answer(result)
        rows.append(row | {k: v for k, v in result.items() if k not in row})
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(out / f"{name}.scores.jsonl", rows)
    summary = {
        "subset": name,
        "file": str(path),
        "seed": options.seed,
        **summary,
        "n_rejected": len(rejects),
        "rejects": rejects[:20],
    }
    write_json_atomic(out / f"{name}.summary.json", summary)
    return summary


def describe(summary: dict[str, Any]) -> str:
    """A few lines for the terminal: the headline, then each mode's score and its miss/guess rate."""
    lines = [f"{summary['subset']}: {summary['n']} items, headline ({summary['mode']}): {_fmt(summary['score'])}"]
    for mode in ("strict", "parity"):
        block = summary.get(mode)
        if isinstance(block, dict):
            extras = [
                f"{key} {_fmt(block[key])}"
                for key in ("miss_rate", "fallback_rate", "n_fallback", "n_failed", "panda", "gpt", "status")
                if block.get(key) is not None
            ]
            lines.append(f"  {mode}: {_fmt(block.get('score'))}" + (f" ({', '.join(extras)})" if extras else ""))
    if summary.get("status"):
        lines.append(f"  status: {summary['status']}")
    if summary["n_rejected"]:
        lines.append(f"  {summary['n_rejected']} row(s) skipped (listed above and in the summary)")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)
