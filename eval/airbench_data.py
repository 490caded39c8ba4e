"""AIR-Bench's foundation (multiple choice) and chat (open QA) tracks from a local copy.

The layout is AIR-Bench's own release (``Foundation/`` and ``Chat/`` folders)::

    ROOT/Foundation_meta.json        # foundation: a JSON list of items
    ROOT/Chat_meta.json              # chat: a JSON list of items
    ROOT/<task_name>_<dataset_name>/<path>   # each item's clip

A foundation item has ``uniq_id``, ``path``, ``task_name``, ``dataset_name``, ``question``,
``choice_a``..``choice_d`` (c and d may be absent) and ``answer_gt`` (the correct option's text); a
chat item has ``uniq_id``, ``path``, ``task_name``, ``dataset_name``, ``question``, ``meta_info``
(the audio description the judge reads) and ``answer_gt``. As in AIR-Bench's inference script,
``Audio_Grounding`` clips are the ``.flac`` files beside the listed ``.wav`` names.

Unlike VoiceBench the model gets the question as text with the audio: the foundation question
follows AIR-Bench's instruction and lettered options, the chat question goes as is. Foundation has
no text form (the audio is the evidence), so text mode skips it; chat's text form is the question
with the audio description, the closest a text-only LLM can get to hearing the clip.
"""

from __future__ import annotations

import json
from pathlib import Path

from lalm.eval.items import DataError, EvalItem, EvalSet, audio_file, missing_fields, unique_ids

META_FILES = {"airbench_foundation": "Foundation_meta.json", "airbench_chat": "Chat_meta.json"}
FOUNDATION_INSTRUCTION = (
    "Choose the most suitable answer from options A, B, C, and D to respond the question in next line, "
    "you may only choose A or B or C or D."
)
_REQUIRED = ("uniq_id", "path", "task_name", "dataset_name", "question")


def load_airbench(root: str | Path, track: str, limit: int | None = None) -> EvalSet:
    """One track (``airbench_foundation`` or ``airbench_chat``) of the AIR-Bench copy at ``root``."""
    if track not in META_FILES:
        raise DataError(f"unknown AIR-Bench track {track!r}; known: {', '.join(META_FILES)}")
    meta = Path(root) / META_FILES[track]
    if not meta.is_file():
        raise DataError(
            f"{meta}: no such file; --airbench DIR needs DIR/{META_FILES[track]} (see docs/eval.md)"
        )
    try:
        rows = json.loads(meta.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{meta}: not valid JSON ({err})") from err
    if not isinstance(rows, list):
        raise DataError(f"{meta}: expected a JSON list of items, got {type(rows).__name__}")
    items = [_item(row, index, meta, track) for index, row in enumerate(rows[:limit] if limit else rows)]
    unique_ids([item.id for item in items], str(meta))
    return EvalSet(
        name=track,
        scorer=track,
        items=items,
        source={"kind": "airbench", "where": str(meta), "path": str(meta.resolve()), "limit": limit},
        official=limit is None,
    )


def _item(row: dict, index: int, meta: Path, track: str) -> EvalItem:
    absent = [k for k in _REQUIRED if not isinstance(row, dict) or row.get(k) is None]
    absent += missing_fields(track, row) if isinstance(row, dict) else []
    if absent:
        raise DataError(
            f"{meta} item {index}: missing {', '.join(absent)}; see the AIR-Bench layout in docs/eval.md"
        )
    clip = meta.parent / f"{row['task_name']}_{row['dataset_name']}" / str(row["path"])
    if row["task_name"] == "Audio_Grounding":
        clip = clip.with_suffix(".flac")
    fields = {k: v for k, v in row.items() if k != "path"}
    if track == "airbench_foundation":
        letters = [(letter, row.get(f"choice_{letter.lower()}")) for letter in "ABCD"]
        options = "\n".join(f"{letter}. {text}" for letter, text in letters if text is not None)
        question, prompt = f"{FOUNDATION_INSTRUCTION}\n{row['question']}\n{options}", None
    else:
        question = str(row["question"])
        prompt = f"{question}\n\n[Audio description: {row['meta_info']}]"
    return EvalItem(str(row["uniq_id"]), prompt, question, audio_file(clip), fields)
