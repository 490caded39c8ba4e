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
    line: int | None = None  # its line in the manifest it was read from (for messages; never written)


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
        problems = self.type_problems()
        if problems:  # the checks below compare values and would raise a TypeError on a wrong type
            raise DataError(f"{where}: " + "; ".join(problems))
        if self.kind not in KINDS:
            problems.append(f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.protocol not in PROTOCOLS:
            problems.append(f"protocol {self.protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if self.protocol == "folds" and self.folds < 3:  # each fold is tested with another validating
            problems.append("protocol folds needs folds >= 3 (one to test, one to validate, the rest to train)")
        if len(self.labels) < 2:
            problems.append("a task needs at least two labels")
        if len(set(self.labels)) != len(self.labels):
            problems.append(f"labels {self.labels} name a class twice")
        if problems:
            raise DataError(f"{where}: " + "; ".join(problems))

    def type_problems(self) -> list[str]:
        """Fields of the wrong JSON type ("folds": "3", "labels": "ab"), each as a fix."""
        problems = [f"`{name}` must be a string, not {value!r}" for name, value in
                    (("name", self.name), ("kind", self.kind), ("protocol", self.protocol),
                     ("description", self.description), ("source", self.source)) if not isinstance(value, str)]
        if not _whole_number(self.folds):
            problems.append(f"`folds` must be a whole number, not {self.folds!r}")
        if not (isinstance(self.labels, list) and all(isinstance(label, str) for label in self.labels)):
            problems.append(f"`labels` must be a list of class names (strings), not {self.labels!r}")
        return problems

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

    def where(self, clip: Clip) -> str:
        """Where a clip comes from, for a skip line: ``manifest.jsonl:LINE`` (its id if not read from one)."""
        return f"{self.directory / 'manifest.jsonl'}:{clip.line}" if clip.line else f"{self.name}:{clip.id}"


def write_task(directory: str | Path, info: TaskInfo, clips: list[Clip]) -> Path:
    """Write a task folder (atomically, manifest first, so a task.json always has its clips)."""
    directory = Path(directory)
    info.check(str(directory))
    rows = []
    for clip in clips:
        row = {k: v for k, v in asdict(clip).items() if v is not None and k != "line"}
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
    fields = read_json(meta)
    if not isinstance(fields, dict):
        raise DataError(f"{meta}: must hold a JSON object (name, kind, protocol, labels, ...)")
    try:
        info = TaskInfo(**fields)
    except TypeError as err:
        raise DataError(f"{meta}: {err}") from err
    info.check(str(meta))
    known, clips, seen = set(info.labels), [], {}
    for number, line, undecodable in read_lines(manifest):
        where = f"{manifest}:{number}"
        try:
            if undecodable:
                raise ValueError(undecodable)
            row = parse_object(line)
            clip = Clip(**{k: row[k] for k in ("id", "audio", "label")},
                        **{k: row[k] for k in ("split", "fold", "group", "meta") if k in row}, line=number)
        except (ValueError, KeyError, TypeError) as err:
            raise DataError(f"{where}: {err}; rows need id, audio and label") from err
        problem = row_problem(clip, info.kind)
        if problem:
            raise DataError(f"{where}: {problem}")
        if clip.id in seen:
            raise DataError(f"{where}: id {clip.id!r} is already on line {seen[clip.id]}; ids must be unique")
        seen[clip.id] = number
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
    present = {label for clip in clips for label in (clip.label if isinstance(clip.label, list) else [clip.label])}
    if len(present) < 2:  # every probe would score 100 %, which says nothing about the encoder
        raise DataError(f"{manifest}: every clip has the label {sorted(present)}; a probe needs clips of at least "
                        "two classes")
    problem = protocol_problem(info, clips)
    if problem:  # found now, not after every clip went through the encoders
        raise DataError(f"{manifest}: {problem}")
    return Task(info, clips, directory)


def protocol_problem(info: TaskInfo, clips: list[Clip]) -> str | None:
    """Why the task's protocol leaves a probe without training, validation or test clips, else None."""
    if info.protocol == "folds":
        empty = [f for f in range(1, info.folds + 1) if not any(c.fold == f for c in clips)]
        return f"fold(s) {empty} have no clips; every fold 1..{info.folds} needs some" if empty else None
    count = {name: sum(c.split == name for c in clips) for name in SPLITS}
    if not count["test"]:
        return "no clip has split test"
    # without valid clips, a share of the training groups is held out: two groups at least
    groups = {c.group or c.id for c in clips if c.split == "train"}
    if not count["train"] or (not count["valid"] and len(groups) < 2):
        return "too few train clips (give split valid clips, or at least two training clips or groups)"
    return None


def row_problem(clip: Clip, kind: str) -> str | None:
    """A manifest row's field of the wrong JSON type, as a fix; None when every field fits."""
    if not isinstance(clip.id, str) or not clip.id:
        return f"`id` must be a non-empty string, not {clip.id!r}"
    if not isinstance(clip.audio, str) or not clip.audio:
        return f"`audio` must be a path (a string), not {clip.audio!r}"
    if kind == "multiclass" and not isinstance(clip.label, str):
        return f"`label` must be one class name (a string) in a multiclass task, not {clip.label!r}"
    names = clip.label if isinstance(clip.label, list) else [clip.label]
    if kind == "multilabel" and not (names and all(isinstance(n, str) for n in names)):
        return f"`label` must be a class name or a list of class names, not {clip.label!r}"
    if clip.fold is not None and not _whole_number(clip.fold):
        return f"`fold` must be a whole number, not {clip.fold!r}"
    if clip.group is not None and not isinstance(clip.group, (str, int)):
        return f"`group` must be a string or number, not {clip.group!r}"
    return None


def _whole_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
