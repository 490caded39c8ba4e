"""A probing task on disk: `task.json` (what the task is) beside `manifest.jsonl` (its clips).

The manifest is the kit's usual one, a JSON object per line with `id` and `audio` (relative to the
manifest, or absolute), plus the probe fields: `label` (a class name; a list of names for multi-label
tasks), and where the task fixes its split, `split` (train / valid / test) or `fold` (1..k, for a
k-fold protocol such as ESC-50's) and optionally `group` (e.g. the speaker, for splits that must keep
a speaker on one side). Task makers (synthetic sets, Hugging Face loaders) write this format and the
probe reads only it, so any set a user converts is probed the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from lalm.eval.items import DataError
from lalm.jsonl import parse_object, read_json, read_lines, write_json_atomic, write_jsonl_atomic

KINDS = ("multiclass", "multilabel")
PROTOCOLS = ("split", "folds")
SPLITS = ("train", "valid", "test")


@dataclass
class Clip:
    """One labelled clip of a task."""

    id: str
    audio: str  # absolute path once loaded
    label: str | list[str]
    split: str | None = None  # protocol "split": train, valid or test
    fold: int | None = None  # protocol "folds": 1..folds
    group: str | None = None  # kept on one side of any split the probe makes (speaker, recording)
    meta: dict | None = None  # how the clip was made or where it came from (not read by the probe)


@dataclass
class TaskInfo:
    """What a task is: everything in task.json."""

    name: str
    kind: str = "multiclass"  # multiclass (accuracy) or multilabel (mAP)
    protocol: str = "split"  # split: the rows' own train/valid/test; folds: k-fold cross-validation
    folds: int = 0  # protocol "folds": how many
    labels: list[str] = field(default_factory=list)  # every class, in a fixed order
    description: str = ""  # one line: what is classified, and how the split was made
    source: str = ""  # where the clips come from (a maker and its seed, a dataset id and revision)

    def check(self, where: str) -> None:
        problems = []
        if self.kind not in KINDS:
            problems.append(f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.protocol not in PROTOCOLS:
            problems.append(f"protocol {self.protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if self.protocol == "folds" and self.folds < 2:
            problems.append("protocol folds needs folds >= 2")
        if len(self.labels) < 2:
            problems.append("a task needs at least two labels")
        if problems:
            raise DataError(f"{where}: " + "; ".join(problems))

    @property
    def metric(self) -> str:
        return "map" if self.kind == "multilabel" else "accuracy"


@dataclass
class Task:
    info: TaskInfo
    clips: list[Clip]
    directory: Path

    @property
    def name(self) -> str:
        return self.info.name


def write_task(directory: str | Path, info: TaskInfo, clips: list[Clip]) -> Path:
    """Write a task folder (atomically, manifest first, so a task.json always has its clips)."""
    directory = Path(directory)
    info.check(str(directory))
    rows = []
    for clip in clips:
        row = {k: v for k, v in asdict(clip).items() if v is not None}
        audio = Path(clip.audio)
        if audio.is_absolute() and audio.is_relative_to(directory):
            row["audio"] = str(audio.relative_to(directory))
        rows.append(row)
    write_jsonl_atomic(directory / "manifest.jsonl", rows)
    write_json_atomic(directory / "task.json", asdict(info))
    return directory


def read_task(directory: str | Path) -> Task:
    """A task folder's info and clips; a bad line or a label outside `labels` names file and line."""
    directory = Path(directory)
    meta, manifest = directory / "task.json", directory / "manifest.jsonl"
    if not meta.is_file() or not manifest.is_file():
        raise DataError(f"{directory}: not a task folder (needs task.json and manifest.jsonl)")
    try:
        info = TaskInfo(**read_json(meta))
    except TypeError as err:
        raise DataError(f"{meta}: {err}") from err
    info.check(str(meta))
    known, clips = set(info.labels), []
    for number, line, undecodable in read_lines(manifest):
        where = f"{manifest}:{number}"
        try:
            if undecodable:
                raise ValueError(undecodable)
            row = parse_object(line)
            clip = Clip(**{k: row[k] for k in ("id", "audio", "label")},
                        **{k: row[k] for k in ("split", "fold", "group", "meta") if k in row})
        except (ValueError, KeyError, TypeError) as err:
            raise DataError(f"{where}: {err}; rows need id, audio and label") from err
        labels = clip.label if isinstance(clip.label, list) else [clip.label]
        if not set(labels) <= known:
            raise DataError(f"{where}: label {sorted(set(labels) - known)} is not in {meta}'s labels")
        if info.protocol == "split" and clip.split not in SPLITS:
            raise DataError(f"{where}: split {clip.split!r} is not one of {', '.join(SPLITS)}")
        if info.protocol == "folds" and not (isinstance(clip.fold, int) and 1 <= clip.fold <= info.folds):
            raise DataError(f"{where}: fold {clip.fold!r} is not in 1..{info.folds}")
        audio = Path(clip.audio)
        clip.audio = str(audio if audio.is_absolute() else (directory / audio).resolve())
        clips.append(clip)
    if not clips:
        raise DataError(f"{manifest}: the task has no clips")
    return Task(info, clips, directory)
