"""Local spoken sets in the kit's manifest format (what ``python -m data_gen.synthesize`` writes).

One JSON object per line: ``id``; ``audio``, a path relative to the manifest (or absolute); the
spoken request as ``prompt`` or ``text`` (text mode sends it, open-set judges read it); optionally
``question``, text sent to the model together with the audio; and the reference fields the chosen
scorer reads (``reference`` or ``answer`` for multiple-choice and sd-qa-style sets, ``choices`` for
option texts, ``instruction_id_list``/``kwargs`` for ifeval-style sets), carried to it unchanged.
A malformed line (not UTF-8, not JSON, missing fields) stops the run with its line number; a missing or unreadable clip fails only its
own item, at generation time.
"""

from __future__ import annotations

from pathlib import Path

from lalm.eval.items import DataError, EvalItem, EvalSet, audio_file, missing_fields, unique_ids
from lalm.jsonl import parse_object, read_lines

OWN_FIELDS = ("id", "audio", "prompt", "question")


def load_manifest(path: str | Path, name: str, scorer: str, limit: int | None = None) -> EvalSet:
    """The manifest's rows as an ``EvalSet`` named ``name`` and scored as ``scorer``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such manifest; pass --manifest with a JSONL file (one clip per line)")
    items = []
    for number, line, undecodable in read_lines(path):
        if limit is not None and len(items) >= limit:
            break
        if undecodable:
            raise DataError(f"{path}:{number}: {undecodable}; re-encode the manifest as UTF-8 or delete the line")
        items.append(_item(_parse(line, path, number), path, number, scorer))
    if not items:
        raise DataError(f"{path}: the manifest has no rows")
    unique_ids([item.id for item in items], str(path))
    return EvalSet(
        name=name,
        scorer=scorer,
        items=items,
        source={"kind": "manifest", "where": str(path), "path": str(path.resolve()), "limit": limit},
    )


def _parse(line: str, path: Path, number: int) -> dict:
    try:
        return parse_object(line)
    except ValueError as err:
        raise DataError(f"{path}:{number}: {err}; fix or delete the line") from err


def _item(row: dict, path: Path, number: int, scorer: str) -> EvalItem:
    where = f"{path}:{number}"
    absent = [name for name in ("id", "audio") if row.get(name) in (None, "")]
    prompt = row.get("prompt", row.get("text"))
    if prompt is None:
        absent.append("prompt or text")
    absent += missing_fields(scorer, row)
    if absent:
        raise DataError(
            f"{where}: missing {', '.join(absent)} (has {', '.join(row) or 'nothing'}); "
            f"a {scorer} manifest row "
            "needs id, audio, prompt (or text) and its reference fields"
        )
    audio = Path(str(row["audio"]))
    fields = {k: v for k, v in row.items() if k not in OWN_FIELDS}
    return EvalItem(
        id=str(row["id"]),
        prompt=str(prompt),
        question=row.get("question"),
        audio=audio_file(audio if audio.is_absolute() else path.parent / audio),
        fields=fields,
    )
