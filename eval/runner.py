"""Generate and score one set in one mode, resumably, into ``RUN_DIR/<set>.<mode>.jsonl``.

That file is the single record of the set in that mode: one row per item with what the model got
(``prompt``, ``input_text``), what it said (``response``, and ``transcript`` in cascade mode), the
reference ``fields``, and after scoring the scorer's ``result`` (extracted answer, correctness or
rating), the raw ``judge_samples`` and any ``judge_error``.

Resuming: rows are appended one batch at a time (see ``lalm.jsonl``), and an item whose row has a
response is never generated again; an item whose row has only an ``error`` (unreadable audio, a
failed endpoint call) is tried again. Deleting rows makes the next run fill exactly those. Judge
samples live in the rows and go back to the scorer as its cache, so a rerun only asks for missing
samples; judging runs in chunks that are saved as they finish, so a kill loses at most one chunk.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from lalm import console
from lalm.audio import AudioError
from lalm.eval.items import DataError, EvalItem, EvalSet
from lalm.eval.models import Reply, Request, Responder, cascade_text
from lalm.eval.scoring import SUBSETS, ScoreOptions, score_subset
from lalm.eval.scoring.breakdown import accuracy_by_group
from lalm.eval.scoring.judge import Judge, JudgeError
from lalm.jsonl import append_jsonl, read_jsonl_skip_torn_tail, write_jsonl_atomic
from lalm.wer import wer

MODES = ("audio", "text", "cascade")
NO_TEXT_FORM = "skipped: this set has no text form for text mode"
#: Items judged per saved chunk; a multiple of the judge's worker pool keeps it busy.
JUDGE_CHUNK = 32
MAX_LISTED_FAILURES = 20


def results_path(run_dir: Path, set_name: str, mode: str) -> Path:
    return run_dir / f"{set_name}.{mode}.jsonl"


def needs_judge(scorer: str) -> bool:
    """Whether a scorer asks an LLM judge when one is configured (open QA, sd-qa, AIR-Bench chat;
    AIR-Bench foundation in parity mode)."""
    return SUBSETS[scorer].judge != "none"


def has_text_form(eval_set: EvalSet) -> bool:
    return any(item.prompt is not None for item in eval_set.items)


def _rows_by_id(path: Path) -> dict[str, dict]:
    """The latest row per id: a retried item's new row replaces its failed one."""
    return {str(row["id"]): row for row in read_jsonl_skip_torn_tail(path)}


def _text_input(item: EvalItem, instruction: str | None) -> str | None:
    """Text mode's request: the prompt; with a scorer's instruction (repeat), both, as the cascade sends
    its transcript with the question, so text mode is the cascade with a perfect ASR."""
    if instruction is None or item.prompt is None:
        return item.prompt
    return cascade_text(item.prompt, item.question or instruction)


def _request(item: EvalItem, mode: str, instruction: str | None = None) -> Request:
    if mode == "text":
        if item.prompt is None:
            raise ValueError("the item has no text form for text mode")
        return Request(_text_input(item, instruction))
    return Request(item.question or instruction, item.audio())


def _row(item: EvalItem, mode: str, reply: Reply, seconds: float | None = None,
         instruction: str | None = None) -> dict[str, Any]:
    if mode == "text":
        input_text = _text_input(item, instruction)
    elif mode == "cascade" and reply.transcript is not None:
        input_text = cascade_text(reply.transcript, item.question or instruction)
    else:
        input_text = item.question or instruction
    row: dict[str, Any] = {"id": item.id, "mode": mode, "prompt": item.prompt, "input_text": input_text}
    if reply.transcript is not None:
        row["transcript"] = reply.transcript
    row |= {"fields": item.fields, "response": reply.response}
    if reply.error is not None:
        row["error"] = reply.error
    if seconds is not None:
        row["seconds"] = round(seconds, 3)
    return row


def generate(
    eval_set: EvalSet,
    mode: str,
    path: Path,
    responder: Callable[[], Responder],
    batch_size: int,
    progress: bool = True,
) -> int:
    """Answer every item that has no response yet; returns how many were asked.

    ``responder`` is called only when something is left to generate, so a finished run rescored with
    another judge never loads the model.
    """
    rows = _rows_by_id(path)
    todo = [item for item in eval_set.items if rows.get(item.id, {}).get("response") is None]
    instruction = SUBSETS[eval_set.scorer].instruction
    done = len(eval_set.items) - len(todo)
    with console.progress(
        total=len(eval_set.items),
        initial=done,
        desc=f"{eval_set.name} [{mode}]",
        unit="item",
        disable=not progress,
    ) as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            out, asked, requests = [], [], []
            for item in batch:
                try:
                    requests.append(_request(item, mode, instruction))
                    asked.append(item)
                except (AudioError, ValueError) as err:  # this item only: reported, skipped, retried next run
                    out.append(_row(item, mode, Reply(error=str(err)), instruction=instruction))
            if requests:
                model = responder()  # built on first use, outside the timing
                started = time.perf_counter()
                replies = model.respond(requests)
                seconds = (time.perf_counter() - started) / len(requests)
                out += [_row(item, mode, reply, seconds, instruction) for item, reply in zip(asked, replies)]
            append_jsonl(path, out)
            bar.update(len(batch))
    return len(todo)


class _ReplayJudge(Judge):
    """The judge for the final scoring pass: cached samples only, so a request that failed in the
    judging pass is not retried a second time in the same run (the next run retries it)."""

    def complete(self, messages: list[dict[str, str]], n: int, temperature: float | None = None) -> list[str]:
        raise JudgeError("no judge reply in this run")


def _scorer_item(row: dict) -> dict[str, Any]:
    return {
        **row["fields"],
        "id": row["id"],
        "prompt": row["prompt"],
        "response": row["response"],
        "judge_samples": row.get("judge_samples"),
        # for scorers of what was heard (repeat); named apart from any reference field of the data
        "eval_mode": row.get("mode"),
        "eval_transcript": row.get("transcript"),
    }


def _chunks(rows: Sequence[dict], size: int) -> list[Sequence[dict]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _score_rows(eval_set: EvalSet, rows: Sequence[dict], options: ScoreOptions, path: Path) -> Any:
    """``score_subset`` on rows; bad reference data becomes a DataError naming the file (answers are kept)."""
    try:
        return score_subset(eval_set.scorer, [_scorer_item(r) for r in rows], options)
    except (KeyError, ValueError) as err:
        raise DataError(
            f"{path}: scoring {eval_set.name} as {eval_set.scorer} failed ({err}); fix the reference fields "
            f"in {eval_set.source.get('where')} and rerun (the answers are kept)"
        ) from err


def score(eval_set: EvalSet, mode: str, path: Path, options: ScoreOptions) -> dict[str, Any]:
    """Score the answered items, write the scored rows back atomically, return the set's summary.

    Items without a response (failed) are left out of the score and listed in the summary.
    """
    rows = _rows_by_id(path)
    ids = [item.id for item in eval_set.items]
    ordered = [rows[i] for i in ids if i in rows]
    current = set(ids)
    others = [row for key, row in rows.items() if key not in current]  # kept, never scored
    answered = [row for row in ordered if row.get("response") is not None]
    judged = options.judge is not None and needs_judge(eval_set.scorer)
    final = options
    if judged and answered:
        for chunk in _chunks(answered, JUDGE_CHUNK):
            results, _ = _score_rows(eval_set, chunk, options, path)
            for row, result in zip(chunk, results):
                row["judge_samples"], row["judge_error"] = result["judge_samples"], result["judge_error"]
            write_jsonl_atomic(path, ordered + others)
        final = replace(options, judge=_ReplayJudge(options.judge.config))
    if answered:
        results, summary = _score_rows(eval_set, answered, final, path)
        summary = {**summary, **accuracy_by_group([row.get("fields") or {} for row in answered], results)}
    else:
        results, summary = [], {"score": None, "n": 0, "status": "no answered items"}
    lifted = SUBSETS[eval_set.scorer].row_fields
    for row, result in zip(answered, results):
        result = {k: v for k, v in result.items() if k not in ("id", "judge_samples", "judge_error")}
        row["result"] = result
        row |= {k: result[k] for k in lifted if k in result}
    write_jsonl_atomic(path, ordered + others)
    failed = [row for row in ordered if row.get("response") is None]
    heard = [(row["prompt"], row["transcript"]) for row in ordered
             if row.get("transcript") is not None and row.get("prompt")]
    if heard:  # what the model itself heard (a CTC projector's transcript, or the cascade's ASR)
        summary = {**summary, "transcript_wer": wer(heard), "n_transcripts": len(heard)}
    return {
        **summary,
        "n_items": len(eval_set.items),
        "n_answered": len(answered),
        "n_failed": len(failed),
        "n_missing": len(ids) - len(ordered),
        "failures": [{"id": r["id"], "error": r.get("error")} for r in failed[:MAX_LISTED_FAILURES]],
        "file": path.name,
    }


def paired(eval_set: EvalSet, run_dir: Path, options: ScoreOptions) -> dict[str, Any] | None:
    """Audio and text scored on the same items: those both modes answered. None unless both modes'
    files exist. When the answered items differ (an item failed in one mode), each mode is scored
    again on the common items, from its saved answers and judge samples (no model or judge call),
    and the items answered in one mode only are listed; the speech/text ratio uses these scores."""
    paths = {mode: results_path(run_dir, eval_set.name, mode) for mode in ("audio", "text")}
    if not all(path.is_file() for path in paths.values()):
        return None
    rows = {mode: _rows_by_id(path) for mode, path in paths.items()}
    answered = {m: {i for i, r in rows[m].items() if r.get("response") is not None} for m in rows}
    order = [item.id for item in eval_set.items]
    common = [i for i in order if i in answered["audio"] and i in answered["text"]]
    only = {m: [i for i in order if i in answered[m] and i not in common] for m in rows}
    record: dict[str, Any] = {
        "n_items": len(common),
        **{f"n_only_{m}": len(ids) for m, ids in only.items()},
        **{f"only_{m}": ids[:MAX_LISTED_FAILURES] for m, ids in only.items()},
    }
    if not any(only.values()):
        return record | {"same_items": True}
    replay = replace(options, judge=_ReplayJudge(options.judge.config)) if options.judge else options
    for mode in rows:
        scored = [rows[mode][i] for i in common]
        record[mode] = _score_rows(eval_set, scored, replay, paths[mode])[1]["score"] if scored else None
    return record | {"same_items": False}
