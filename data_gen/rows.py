"""Which manifest rows are usable and which shard owns them; every unusable row becomes a reject with a reason.

A corpus of a million clips always has some broken ones. Rather than stopping a long run, each bad row
(bad JSON, missing id, duplicate id, empty transcript, unknown metadata, missing or unreadable audio)
is set aside with its manifest line number and the reason, and the run goes on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from lalm import console
from lalm.audio import AudioError, load_audio, probe_audio
from lalm.data_gen.meta import MetaError, MetaNormaliser
from lalm.data_gen.sources import Record


@dataclass(frozen=True)
class Row:
    """A usable row: the input fields (audio path resolved, meta normalised) and its metadata labels."""

    id: str
    transcript: str
    labels: list[str]
    fields: dict


@dataclass(frozen=True)
class Reject:
    line: int
    id: str | None
    reason: str

    def to_json(self) -> dict:
        return {"line": self.line, "id": self.id, "reason": self.reason}


def list_rejects(rejects: Iterable[Reject], source: str) -> None:
    """Each reject as every command lists a bad row, `skipped: SOURCE:LINE: reason` on stderr (the
    rejects file keeps them too)."""
    for reject in rejects:
        console.skipped(f"{source}:{reject.line}", reject.reason)


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`: the manifest lines n with (n - 1) mod count == index.

    Line numbers, not ids, decide, so even lines that are not valid JSON land in exactly one shard.
    """

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, spec: str | None) -> Shard:
        if spec is None:
            return cls()
        index, sep, count = spec.partition("/")
        if not (sep and index.isdigit() and count.isdigit() and int(index) < int(count)):
            raise ValueError(f"--shard {spec!r}: expected I/N with 0 <= I < N, e.g. 0/4")
        return cls(int(index), int(count))

    def owns(self, line: int) -> bool:
        return (line - 1) % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def identify(records: Iterable[Record], shard: Shard = Shard()) -> Iterator[tuple[Record, str] | Reject]:
    """(record, id) for this shard's readable rows with a new id; a Reject for the others.

    Ids are tracked over the whole manifest, so a duplicate is caught even when its first occurrence
    belongs to another shard; the first occurrence wins.
    """
    first_line: dict[str, int] = {}
    for record in records:
        row_id = row_id_of(record.data)
        duplicate_of = first_line.get(row_id) if row_id is not None else None
        if row_id is not None and duplicate_of is None:
            first_line[row_id] = record.line
        if not shard.owns(record.line):
            continue
        if record.error:
            yield Reject(record.line, None, record.error)
        elif row_id is None:
            yield Reject(record.line, None, f"id: missing or not a string/integer (got {record.data.get('id')!r})")
        elif duplicate_of is not None:
            yield Reject(record.line, row_id, f"id: duplicate id {row_id!r}, first seen on line {duplicate_of}")
        else:
            yield record, row_id


def check_row(record: Record, row_id: str, normaliser: MetaNormaliser, decode_audio: bool = False) -> Row | Reject:
    """The row if its transcript, metadata and audio are usable, else a Reject naming the first problem."""
    data = dict(record.data)
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        return Reject(record.line, row_id, f"text: empty or missing transcript (got {text!r})")
    meta = data.get("meta") or {}
    if not isinstance(meta, dict):
        return Reject(record.line, row_id, f"meta: expected an object, got {type(meta).__name__}")
    try:
        meta = normaliser.normalise(meta)
    except MetaError as err:
        return Reject(record.line, row_id, str(err))
    audio = data.get("audio")
    if not isinstance(audio, str) or not audio:
        return Reject(record.line, row_id, f"audio: missing path (got {audio!r})")
    try:
        info = probe_audio(audio)
        if decode_audio:
            load_audio(audio)
    except AudioError as err:
        return Reject(record.line, row_id, f"audio: {err}")
    if "meta" in data:
        data["meta"] = meta
    data.setdefault("duration", round(info.duration, 3))
    return Row(row_id, text.strip(), normaliser.render(meta), data)


def row_id_of(data: dict | None) -> str | None:
    """The id of a row as a string, or None when it is missing or not a non-empty string or integer."""
    value = (data or {}).get("id")
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        return None
    return str(value)
