"""Real probing sets through Hugging Face `datasets`: a hub id or a local copy, any column names.

`load_hf_task` turns a dataset into a task folder: each clip decoded (from the dataset's audio bytes
or files, without `datasets`' own decoder) to 16 kHz mono wav under the folder, labels read as
names (a ClassLabel's names, or the values as text), and the split of the original set kept:

- `folds`: the set's own fold column (ESC-50's 5 folds);
- `splits`: the dataset's own train / validation / test splits;
- `grouped`: a seeded 60/20/20 split by a group column, so no speaker is on two sides (CREMA-D);
- `stratified`: a seeded 60/20/20 split within each label.

`HF_SETS` (data/hf_sets.json) are presets for ESC-50, GTZAN, Speech Commands v2, CREMA-D, VoxLingua,
LibriCount, VocalSound and NSynth. Their hub ids and columns are unverified here (no network); the
loader itself is tested on local datasets.
"""

from __future__ import annotations

import io
import json
import random
from functools import cache
from pathlib import Path

import soundfile as sf

from lalm.audio import SAMPLE_RATE, prepare_waveform
from lalm.console import progress
from lalm.errors import UserError
from lalm.eval.probing.synthetic import partition
from lalm.eval.probing.tasks import Clip, TaskInfo, read_task, write_task

DATA = Path(__file__).resolve().parent / "data"
SPLIT_NAMES = {"train": "train", "validation": "valid", "valid": "valid", "dev": "valid", "test": "test"}


@cache
def hf_sets() -> dict[str, dict]:
    return {k: v for k, v in json.loads((DATA / "hf_sets.json").read_text()).items() if not k.startswith("_")}


def make_preset(name: str, out_dir: str | Path, hf_path: str | None = None, seed: int = 0) -> Path:
    presets = hf_sets()
    if name not in presets:
        raise UserError(f"unknown hf preset {name!r}; valid: {', '.join(sorted(presets))}")
    p = dict(presets[name])
    return load_hf_task(name, hf_path or p.pop("dataset"), out_dir, seed=seed, config=p.pop("config", None),
                        audio_column=p.pop("audio"), label_column=p.pop("label"), **{k: v for k, v in p.items()
                                                                                       if k != "dataset"})


def open_dataset(source: str, config: str | None = None, revision: str | None = None) -> dict:
    """{split name: Dataset} from a folder saved with save_to_disk, any local folder, or a hub id."""
    import datasets

    path = Path(source)
    if (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file():
        loaded = datasets.load_from_disk(str(path))
    else:
        loaded = datasets.load_dataset(source, config, revision=revision)
    return dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}


def load_hf_task(name: str, source: str, out_dir: str | Path, *, audio_column: str = "audio",
                 label_column: str = "label", protocol: str = "splits", fold_column: str | None = None,
                 folds: int = 0, group_column: str | None = None, drop_labels: tuple[str, ...] = (),
                 config: str | None = None, revision: str | None = None, description: str = "",
                 seed: int = 0) -> Path:
    """Write the task folder out_dir/name from a dataset (reused when made before from the same source)."""
    folder = Path(out_dir) / name
    origin = f"hf:{source} config={config} revision={revision} protocol={protocol} seed={seed}"
    if (folder / "task.json").is_file() and read_task(folder).info.source == origin:
        return folder
    import datasets

    rows = []  # (split of origin, label, group, fold, audio value)
    for split, ds in open_dataset(source, config, revision).items():
        for column in (audio_column, label_column, fold_column, group_column):
            if column and column not in ds.column_names:
                raise UserError(f"{source} [{split}]: no column {column!r}; columns: {', '.join(ds.column_names)}")
        names = ds.features[label_column].names if isinstance(ds.features[label_column], datasets.ClassLabel) else None
        ds = ds.cast_column(audio_column, datasets.Audio(decode=False))
        for row in ds:
            label = names[row[label_column]] if names else str(row[label_column])
            if label not in drop_labels:
                rows.append((split, label, row.get(group_column) if group_column else None,
                             row.get(fold_column) if fold_column else None, row[audio_column]))
    if not rows:
        raise UserError(f"{source}: no clips")
    splits = assign_splits(rows, protocol, seed)
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    clips = []
    for i, (row, split) in enumerate(progress(list(zip(rows, splits)), desc=name, unit="clip")):
        origin_split, label, group, fold, audio = row
        wav = folder / "clips" / f"{name}-{i:06d}.wav"
        if not wav.is_file():
            write_wav(wav, audio, f"{source} [{origin_split}] row {i}")
        clips.append(Clip(wav.stem, str(wav), label, split=None if protocol == "folds" else split,
                          fold=int(fold) if protocol == "folds" else None,
                          group=None if group is None else str(group)))
    labels = sorted({c.label for c in clips})
    info = TaskInfo(name, protocol="folds" if protocol == "folds" else "split", folds=folds, labels=labels,
                    description=description or f"{label_column} of {source}", source=origin)
    return write_task(folder, info, clips)


def assign_splits(rows: list[tuple], protocol: str, seed: int) -> list[str | None]:
    """train / valid / test per row as the protocol says (None for folds: the fold decides)."""
    rng = random.Random(seed)
    if protocol == "folds":
        if any(r[3] is None for r in rows):
            raise UserError("protocol folds needs a fold column with a value in every row")
        return [None] * len(rows)
    if protocol == "splits":
        out = [SPLIT_NAMES.get(r[0]) for r in rows]
        if None in out:
            raise UserError(f"split names {sorted({r[0] for r in rows} - set(SPLIT_NAMES))} are not train, "
                            "validation or test; use protocol grouped or stratified")
        return out
    if protocol == "grouped":
        where = {g: s for s, groups in partition(sorted({str(r[2]) for r in rows}), rng).items() for g in groups}
        return [where[str(r[2])] for r in rows]
    if protocol == "stratified":
        out: list[str | None] = [None] * len(rows)
        for label in sorted({r[1] for r in rows}):
            for split, members in partition([i for i, r in enumerate(rows) if r[1] == label], rng).items():
                for i in members:
                    out[i] = split
        return out
    raise UserError(f"unknown protocol {protocol!r}; valid: folds, splits, grouped, stratified")


def write_wav(wav: Path, audio: dict, where: str) -> None:
    """One dataset audio value ({bytes, path}, undecoded) as a 16 kHz mono wav, written atomically."""
    source = io.BytesIO(audio["bytes"]) if audio.get("bytes") else audio.get("path")
    if source is None:
        raise UserError(f"{where}: the audio has neither bytes nor a path")
    data, rate = sf.read(source, dtype="float32", always_2d=True)
    tmp = wav.with_name(f".{wav.name}.tmp")
    sf.write(tmp, prepare_waveform(data, rate, source=where), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    tmp.replace(wav)
