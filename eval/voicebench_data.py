"""VoiceBench subsets from the Hugging Face hub (``hlt-lab/voicebench``) or from a local copy.

Every subset has an ``audio`` column (the spoken request) and a ``prompt`` column (its text, which
text mode sends and the judges read); the scored subsets add the columns in ``EXTRA_COLUMNS``, the
ones VoiceBench's own evaluators read. A subset lacking one is refused up front, naming the columns
it has. Splits: ``sd-qa`` is split by speaker accent (the leaderboard uses ``usa``), ``mmsu`` by
domain (all twelve make the leaderboard number), every other subset has ``test``.

Audio is read with the ``Audio(decode=False)`` cast, so ``datasets`` hands over the stored bytes and
soundfile decodes them: no torchcodec or ffmpeg is needed.

Local copies (``--data-dir DIR``) may take three layouts, per subset folder ``DIR/<subset>/``:
a ``DatasetDict.save_to_disk`` folder (``dataset_dict.json`` and one folder per split); one
``Dataset.save_to_disk`` folder per split (``DIR/<subset>/<split>/state.json``); or the hub's own
parquet files (``DIR/<subset>/<split>-00000-of-00001.parquet``), which
``huggingface-cli download hlt-lab/voicebench --repo-type dataset --local-dir DIR`` produces.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lalm.eval.items import DataError, EvalItem, EvalSet, audio_bytes, audio_file, unique_ids
from lalm.eval.scoring import SUBSETS

HUB_ID = "hlt-lab/voicebench"
VOICEBENCH_SUBSETS = tuple(name for name, subset in SUBSETS.items() if subset.benchmark == "voicebench")
ALL_SPLITS = "all"
BASE_COLUMNS = ("audio", "prompt")
#: The columns each subset's scorer needs besides audio and prompt (VoiceBench's evaluators read them).
EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {
    "sd-qa": ("reference",),
    "mmsu": ("reference",),
    "openbookqa": ("reference",),
    "bbh": ("id", "reference"),  # the bbh subtask is named inside the id
    "ifeval": ("key", "instruction_id_list", "kwargs"),
}
#: Leaderboard splits where they are not ``test``.
DEFAULT_SPLITS = {"sd-qa": "usa", "mmsu": ALL_SPLITS}
_PARQUET = re.compile(r"(?P<split>.+?)-\d{5}-of-\d{5}\.parquet")

DatasetLoader = Callable[[], Any]


def default_split(subset: str) -> str:
    """The split the VoiceBench leaderboard reports for ``subset``."""
    return DEFAULT_SPLITS.get(subset, "test")


def load_voicebench(
    subset: str,
    *,
    split: str | None = None,
    data_dir: str | Path | None = None,
    revision: str | None = None,
    limit: int | None = None,
    cache_dir: str | None = None,
) -> EvalSet:
    """One VoiceBench subset as an ``EvalSet``; ``split`` is a split name, a comma list or "all".

    The set is named after the subset, with the split appended when it is not the leaderboard's, so
    that results of another accent never mix with the leaderboard's sd-qa.
    """
    if subset not in VOICEBENCH_SUBSETS:
        raise DataError(f"unknown VoiceBench subset {subset!r}; known: {', '.join(VOICEBENCH_SUBSETS)}")
    split = split or default_split(subset)
    wanted = None if split == ALL_SPLITS else [s.strip() for s in split.split(",") if s.strip()]
    if data_dir is not None:
        loaders, source = _local_loaders(Path(data_dir) / subset, cache_dir)
    else:
        loaders, source = _hub_loaders(subset, wanted, revision)
    chosen = list(loaders) if wanted is None else wanted
    unknown = [s for s in chosen if s not in loaders]
    if unknown:
        raise DataError(
            f"{source['where']}: no split {', '.join(unknown)}; it has {', '.join(loaders)} "
            f"(pass --split with one of them, a comma list, or {ALL_SPLITS})"
        )
    items: list[EvalItem] = []
    fingerprints = {}  # the splits actually read (a --limit may stop early) and their datasets fingerprints
    for name in chosen:
        dataset = loaders[name]()
        fingerprints[name] = getattr(dataset, "_fingerprint", None)
        items += _items(subset, name, dataset, source["where"], prefix=len(chosen) > 1)
        if limit is not None and len(items) >= limit:
            items = items[:limit]
            break
    unique_ids([item.id for item in items], source["where"])
    leaderboard_split = split == default_split(subset)
    return EvalSet(
        name=subset if leaderboard_split else f"{subset}-{'+'.join(chosen)}",
        scorer=subset,
        items=items,
        source={**source, "splits": list(fingerprints), "fingerprints": fingerprints, "limit": limit},
        official=leaderboard_split and limit is None,
    )


def _hub_loaders(subset: str, wanted: list[str] | None, revision: str | None) -> tuple[dict, dict]:
    """Loaders per split from the hub; "all" splits needs one listing call first."""
    import datasets

    where = f"{HUB_ID} ({subset})"

    def load(split: str) -> Any:
        try:
            return datasets.load_dataset(HUB_ID, subset, split=split, revision=revision)
        except Exception as err:  # network, auth and unknown-split errors all get the same advice
            raise DataError(
                f"{where}: could not load split {split!r} ({type(err).__name__}: {err}); check the split "
                "name and your network or HF_TOKEN, or pass --data-dir with a local copy"
            ) from err

    splits = wanted
    if splits is None:
        try:
            splits = datasets.get_dataset_split_names(HUB_ID, subset, revision=revision)
        except Exception as err:
            raise DataError(
                f"{where}: could not list the splits ({err}); pass --split or --data-dir"
            ) from err
    source = {
        "kind": "hub",
        "where": where,
        "dataset": HUB_ID,
        "config": subset,
        "revision": revision or "main",
        "resolved_revision": _hub_commit(revision),
    }
    return {s: (lambda s=s: load(s)) for s in splits}, source


def _hub_commit(revision: str | None) -> str | None:
    """The commit a hub revision resolves to, so the run records exactly which data it saw."""
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(HUB_ID, revision=revision).sha
    except Exception:  # noqa: BLE001  offline, rate-limited, any hub client: the record says unknown
        return None


def _local_loaders(folder: Path, cache_dir: str | None) -> tuple[dict[str, DatasetLoader], dict]:
    """Loaders per split for the three local layouts (see the module docstring)."""
    import datasets

    source = {"kind": "local", "where": str(folder), "path": str(folder.resolve())}
    if not folder.is_dir():
        raise DataError(
            f"{folder}: no such folder; --data-dir DIR needs DIR/<subset>/ holding a save_to_disk copy "
            "or the hub's parquet files "
            f"(huggingface-cli download {HUB_ID} --repo-type dataset --local-dir DIR)"
        )
    if (folder / "dataset_dict.json").is_file():
        whole = datasets.load_from_disk(str(folder))
        return {s: (lambda s=s: whole[s]) for s in whole}, {**source, "format": "save_to_disk"}
    parquet: dict[str, list[str]] = {}
    for file in sorted(folder.glob("*.parquet")):
        match = _PARQUET.fullmatch(file.name)
        parquet.setdefault(match["split"] if match else file.stem, []).append(str(file))
    if parquet:

        def load(split: str) -> Any:
            return datasets.load_dataset(
                "parquet", data_files={split: parquet[split]}, split=split, cache_dir=cache_dir
            )

        return {s: (lambda s=s: load(s)) for s in parquet}, {**source, "format": "parquet"}
    per_split = sorted(d for d in folder.iterdir() if (d / "state.json").is_file())
    if per_split:
        loaders = {d.name: (lambda d=d: datasets.load_from_disk(str(d))) for d in per_split}
        return loaders, {**source, "format": "save_to_disk per split"}
    raise DataError(
        f"{folder}: holds no dataset_dict.json, no *.parquet and no <split>/state.json; save the subset "
        "with DatasetDict.save_to_disk, or download the hub's parquet files into it"
    )


def _items(subset: str, split: str, dataset: Any, where: str, prefix: bool) -> list[EvalItem]:
    """Items of one split; the explicit column check makes a wrong data set fail before any generation."""
    from datasets import Audio

    needed = BASE_COLUMNS + EXTRA_COLUMNS.get(subset, ())
    missing = [c for c in needed if c not in dataset.column_names]
    if missing:
        raise DataError(
            f"{where} split {split}: missing column(s) {', '.join(missing)}; it has "
            f"{', '.join(dataset.column_names)}. VoiceBench {subset} needs {', '.join(needed)}: point "
            f"--data-dir at a copy of {HUB_ID}, or rename the columns"
        )
    if isinstance(dataset.features["audio"], Audio):
        dataset = dataset.cast_column("audio", Audio(decode=False))
    clips = dataset.select_columns(["audio"])
    items = []
    for index, row in enumerate(dataset.remove_columns("audio")):
        base = row.get("id", row.get("key", index))
        item_id = f"{split}/{base}" if prefix else str(base)
        fields = {k: v for k, v in row.items() if k != "prompt"} | {"split": split}
        source = f"{where} split {split} row {index} (id {item_id})"
        items.append(EvalItem(item_id, row["prompt"], None, _row_audio(clips, index, source), fields))
    return items


def _row_audio(clips: Any, index: int, source: str) -> Callable:
    """A loader for one row's clip, from its stored bytes or, failing those, its stored file path."""
    from lalm.audio import AudioError

    def load() -> Any:
        cell = clips[index]["audio"] or {}
        if cell.get("bytes"):
            return audio_bytes(cell["bytes"], source)()
        if cell.get("path") and Path(cell["path"]).is_file():
            return audio_file(Path(cell["path"]))()
        raise AudioError(f"{source}: the audio cell holds neither bytes nor a readable file path")

    return load
