"""Score replies that were generated elsewhere: ``python eval/voicebench.py --score-file``.

The way VoiceBench's own ``evaluate.py`` is used: any system's replies, one JSONL row per item with
the reply in ``response`` and the subset's reference fields named as in the official data
(``reference`` for mmsu/openbookqa/bbh/sd-qa, the bbh subtask inside ``id``,
``instruction_id_list``/``kwargs``/``prompt`` for ifeval, nothing more for advbench). The files
VoiceBench's ``main.py`` writes are such files, and so are those of its ``api_judge.py``, whose
``score`` lists (the judge's raw replies) are then read instead of asking a judge. VoiceBench's
evaluator names (mcq, bbh, harm, ifeval, qa, open) are accepted as subset names.

Bad rows (not JSON, nested too deeply, not an object, no string ``response``, bad bytes, a reference
field of the wrong type, see ``FIELDS``) are reported with file, line and reason and skipped; reference
fields missing altogether stop the run with a DataError naming the file (the wrong ``--subset``). Writes
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
from lalm.eval.scoring.ifeval import instruction_problem
from lalm.jsonl import TOO_DEEP, remove_stale_temps, write_json_atomic, write_jsonl_atomic

#: VoiceBench's evaluator names -> the kit subset scored the same way.
OFFICIAL_EVALUATORS = {"mcq": "mmsu", "harm": "advbench", "qa": "sd-qa", "open": "commoneval"}


def subset_name(name: str) -> str:
    """A kit subset name for ``name`` (a kit name or a VoiceBench evaluator name); else DataError."""
    name = OFFICIAL_EVALUATORS.get(name, name)
    if name not in SUBSETS:
        known = ", ".join([*SUBSETS, *OFFICIAL_EVALUATORS])
        raise DataError(f"unknown subset {name!r} for --score-file; known: {known}")
    return name


# The shapes a reference field may have; a scorer reads nothing else, so a row passing these checks
# cannot crash it with a TypeError deep inside (a number where it joins strings, a null in a list).
SCALAR = "a string or number"
SCALARS = "a list of strings or numbers"
STRINGS = "a list of strings"
OBJECTS = "a list of objects"
SHAPES = {
    SCALAR: lambda v: isinstance(v, (str, int, float)) and not isinstance(v, bool),
    SCALARS: lambda v: isinstance(v, list) and all(SHAPES[SCALAR](x) for x in v),
    STRINGS: lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    OBJECTS: lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
    f"{SCALAR} or {SCALARS}": lambda v: SHAPES[SCALAR](v) or SHAPES[SCALARS](v),
    f"{SCALARS} or a count": lambda v: SHAPES[SCALARS](v) or (isinstance(v, int) and not isinstance(v, bool) and v > 0),
}
_MCQ = {"reference": SCALAR, "answer": SCALAR, "choices": f"{SCALARS} or a count"}
_OPEN = {"prompt": SCALAR, "instruction": SCALAR, "judge_samples": OBJECTS}
_CHOICE_LETTERS = {f"choice_{c}": SCALAR for c in "abcd"}
#: Per subset, the reference fields its scorer reads and their shape (absent or null: not checked here).
FIELDS: dict[str, dict[str, str]] = {
    "mmsu": _MCQ,
    "openbookqa": _MCQ,
    "bbh": {"reference": SCALAR, "answer": SCALAR, "subtask": SCALAR},
    "sd-qa": {**_OPEN, "question": SCALAR, "reference": SCALAR, "answer": SCALAR},
    "ifeval": {"instruction_id_list": STRINGS, "kwargs": OBJECTS, "prompt": SCALAR},
    "short_answer": {"answers": f"{SCALAR} or {SCALARS}", "reference": f"{SCALAR} or {SCALARS}"},
    "label_choice": {"reference": SCALAR, "choices": SCALARS},
    "airbench_foundation": {"answer_gt": SCALAR, "reference": SCALAR, "answer": SCALAR, "choices": SCALARS,
                            **_CHOICE_LETTERS, "task_name": SCALAR, "dataset_name": SCALAR, "question": SCALAR},
    "airbench_chat": {**_OPEN, "answer_gt": SCALAR, "reference": SCALAR, "meta_info": SCALAR,
                      "question": SCALAR, "task_name": SCALAR},
}
FIELDS.update({name: _OPEN if s.judge == "required" else {} for name, s in SUBSETS.items() if name not in FIELDS})


def field_problem(row: dict[str, Any], subset: str) -> str | None:
    """Why ``row``'s reference fields cannot be scored as ``subset`` (a wrong type), else None."""
    for name, shape in FIELDS[subset].items():
        value = row.get(name)
        if value is not None and not SHAPES[shape](value):
            return f"`{name}` must be {shape}, not {_shown(value)}"
    ids, kwargs = row.get("instruction_id_list"), row.get("kwargs")
    if subset == "ifeval" and ids is not None and kwargs is not None and len(ids) != len(kwargs):
        return f"{len(ids)} instruction ids but {len(kwargs)} kwargs (one object per instruction)"
    if subset == "ifeval" and ids is not None:  # each instruction's kwargs, as its checker takes them
        pairs = zip(ids, kwargs or [{}] * len(ids))
        return next(filter(None, (instruction_problem(i, kw, complete=False) for i, kw in pairs)), None)
    return None


def _shown(value: Any) -> str:
    """A wrong value for a message: its JSON type, and the value itself when short."""
    kind = {dict: "an object", list: "a list", bool: "a boolean", str: "a string"}.get(type(value), "a number")
    text = json.dumps(value)
    return f"{kind} ({text})" if len(text) <= 40 else kind


def read_replies(path: Path, subset: str = "") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(items, rejects)``: each usable row with its line number under ``_line``, and each bad line
    as ``{"file", "line", "reason"}``; with ``subset``, rows whose reference fields have the wrong
    type for it are bad lines too."""
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
            except RecursionError:  # json's decoder recurses once per level of nesting
                reason = TOO_DEEP
            if isinstance(row, list) and row and isinstance(row[0], dict):
                row = row[0]  # VoiceBench's ifeval reader takes a list row's first element too
            if reason is None and not isinstance(row, dict):
                reason = f"a JSON {type(row).__name__}, not an object"
            elif reason is None and not isinstance(row.get("response"), str):
                reason = "no string `response` (the reply to score)"
            elif reason is None and subset:
                reason = field_problem(row, subset)
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
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: a file is there, --out names a folder; give another path")
    items, rejects = read_replies(path, name)
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
    for written in (out / f"{name}.scores.jsonl", out / f"{name}.summary.json"):
        remove_stale_temps(written)  # left by a run killed mid-write
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
    # single-mode scorers (short_answer, label_choice) and skipped judged sets name no mode
    mode = f" ({summary['mode']})" if summary.get("mode") else ""
    n = summary.get("n", "?")
    lines = [f"{summary['subset']}: {n} items, headline{mode}: {_fmt(summary.get('score'))}"]
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
    if summary.get("n_rejected"):
        lines.append(f"  {summary['n_rejected']} row(s) skipped (listed above and in the summary)")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)
