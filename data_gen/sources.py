"""Reading ASR corpora into one row shape: `id`, `audio` (a file path), `text`, optional `duration`, `meta`.

Three sources feed the same pipeline: the kit's JSONL manifest, Lhotse cut manifests, and Hugging Face
datasets. Each yields `Record`s numbered by manifest line (dataset row for Hugging Face, counted from 1)
so that rejects point at the exact line and sharding by line number is deterministic. A line that
cannot be read becomes a Record with an `error` instead of stopping the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lalm.data_gen.meta import META_MAP
from lalm.data_gen.store import safe_name
from lalm.jsonl import parse_object, read_lines, write_atomic

#: Row fields that `--hf-columns` can map dataset columns to; `meta.<field>` maps into the metadata.
HF_FIELDS = ("id", "text", "audio", "duration")


@dataclass(frozen=True)
class Record:
    """One manifest line: its number and either the row read from it or why it could not be read."""

    line: int
    data: dict | None = None
    error: str | None = None


def jsonl_records(path: str | Path) -> Iterator[Record]:
    """Rows of a JSONL manifest; relative audio paths resolve against the manifest's folder."""
    base = Path(path).absolute().parent
    for number, data, error in _json_lines(path):
        yield Record(number, error=error) if error else Record(number, _resolve_audio(data, base))


def lhotse_records(path: str | Path) -> Iterator[Record]:
    """Rows of a Lhotse cut manifest (jsonl or jsonl.gz), one per cut, via lhotse's own deserialiser."""
    try:
        from lhotse import CutSet
    except ImportError as err:
        raise ImportError("reading Lhotse cut manifests needs lhotse: pip install lhotse") from err
    return _lhotse_rows(Path(path), CutSet)


def _lhotse_rows(path: Path, cut_set: type) -> Iterator[Record]:
    base = path.absolute().parent
    for number, data, error in _json_lines(path):
        if error:
            yield Record(number, error=error)
            continue
        try:
            cut = next(iter(cut_set.from_dicts([data])))
        except (ValueError, KeyError, TypeError, AttributeError) as err:  # lhotse's errors for malformed cuts
            yield Record(number, error=f"lhotse: not a Lhotse cut ({type(err).__name__}: {err})")
            continue
        sources = getattr(getattr(cut, "recording", None), "sources", None) or []
        if len(sources) != 1 or sources[0].type != "file":
            yield Record(number, error=f"lhotse: cut {cut.id} has no single file audio source; only file sources are read")
            continue
        meta: dict = {}
        if cut.supervisions:
            first = cut.supervisions[0]
            meta = {k: getattr(first, k) for k in ("gender", "language", "speaker") if getattr(first, k, None)}
            meta.update(first.custom or {})
        row = {
            "id": cut.id,
            "audio": sources[0].source,
            "text": " ".join(s.text.strip() for s in cut.supervisions if s.text),
            "start": cut.start,
            "duration": cut.duration,
            "meta": meta,
        }
        yield Record(number, _resolve_audio(row, base))


def parse_columns(spec: str | None) -> dict[str, str]:
    """`id=utt_id,text=sentence,meta.gender=sex` -> {row field: dataset column}."""
    mapping: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in (spec or "").split(","))):
        field, sep, column = item.partition("=")
        if not sep or not column or not (field in HF_FIELDS or field.startswith("meta.") and len(field) > 5):
            raise ValueError(f"--hf-columns item {item!r}: expected FIELD=COLUMN with FIELD one of "
                             f"{', '.join(HF_FIELDS)} or meta.NAME")
        mapping[field] = column
    return mapping


def hf_records(source: str, config: str | None, split: str, columns: str | None, audio_dir: Path,
               owned: Callable[[int], bool] = lambda line: True) -> Iterator[Record]:
    """Rows of a Hugging Face dataset: a hub name, a local data folder, or a `save_to_disk` folder.

    Audio stored inside the dataset (bytes rather than an existing file) is written once to `audio_dir`,
    since the rest of the kit reads audio from files; only for rows `owned` by this shard, so that N
    machines do not each export the whole dataset.
    """
    import datasets

    folder = Path(source)
    if (folder / "state.json").exists() or (folder / "dataset_dict.json").exists():
        dataset = datasets.load_from_disk(source)
        if isinstance(dataset, datasets.DatasetDict):
            dataset = dataset[split]
    else:
        dataset = datasets.load_dataset(source, config, split=split)
    mapping = _column_mapping(parse_columns(columns), dataset.column_names, source)
    audio_column = mapping["audio"]
    if isinstance(dataset.features.get(audio_column), datasets.Audio):
        dataset = dataset.cast_column(audio_column, datasets.Audio(decode=False))
    return _hf_rows(dataset, mapping, audio_dir, owned)


def _column_mapping(user: dict[str, str], available: list[str], source: str) -> dict[str, str]:
    """The user's mapping over the defaults (same-named columns); every named column must exist."""
    defaults = {f: f for f in HF_FIELDS if f in available}
    defaults.update({f"meta.{f}": f for f in META_MAP if f in available})
    mapping = {**defaults, **user}
    missing = [f"{field}={column}" for field, column in mapping.items() if column not in available]
    for field in ("text", "audio"):
        if field not in mapping:
            missing.append(f"{field}=?")
    if missing:
        raise ValueError(f"{source}: dataset has no column for {', '.join(missing)}; its columns: "
                         f"{', '.join(available)}; map them with --hf-columns")
    return mapping


def _hf_rows(dataset, mapping: dict[str, str], audio_dir: Path, owned: Callable[[int], bool]) -> Iterator[Record]:
    used = set(mapping.values())
    for index, item in enumerate(dataset):
        row = {k: v for k, v in item.items() if k not in used}
        row_id = str(item[mapping["id"]]) if "id" in mapping else str(index)
        row["id"] = row_id
        row["text"] = item[mapping["text"]]
        row["audio"] = _audio_file(item[mapping["audio"]], row_id, audio_dir) if owned(index + 1) else None
        if "duration" in mapping:
            row["duration"] = item[mapping["duration"]]
        meta = {f.removeprefix("meta."): item[c] for f, c in mapping.items() if f.startswith("meta.")}
        if meta:
            row["meta"] = meta
        yield Record(index + 1, row)


def _audio_file(value: object, row_id: str, audio_dir: Path) -> object:
    """A file path for a dataset's audio value: a path string, or an Audio(decode=False) dict."""
    if not isinstance(value, dict):
        return value
    path = value.get("path")
    if path and os.path.isfile(path):
        return path
    if not value.get("bytes"):
        return path
    audio_dir.mkdir(parents=True, exist_ok=True)
    target = audio_dir / (safe_name(row_id) + (Path(path).suffix if path else ".wav"))
    if not target.exists():
        write_atomic(target, value["bytes"])
    return str(target)


def _json_lines(path: str | Path) -> Iterator[tuple[int, dict, str | None]]:
    """(line number, object, error) per line; error says why a line is not a JSON object."""
    for number, line, undecodable in read_lines(path):
        if undecodable:
            yield number, {}, f"encoding: {undecodable}; re-encode the manifest as UTF-8"
            continue
        try:
            yield number, parse_object(line), None
        except ValueError as err:
            yield number, {}, f"json: {err}"


def _resolve_audio(row: dict, base: Path) -> dict:
    audio = row.get("audio")
    if isinstance(audio, str) and audio and not os.path.isabs(audio):
        return {**row, "audio": os.path.normpath(base / audio)}
    return row
