"""What every data source hands the harness: items with lazily decoded audio, and one error type.

Loaders (VoiceBench, a kit manifest, AIR-Bench) differ only in where rows and clips come from; the
harness sees the same ``EvalItem`` from each. Audio is decoded only when a batch needs it, so a 3,000
item set does not sit in memory, and a clip that cannot be decoded fails its own item only.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from lalm.audio import AudioError, load_audio, prepare_waveform
from lalm.errors import UserError

AudioLoader = Callable[[], np.ndarray]

#: Reference fields each scorer reads (see ``eval.scoring``); each inner tuple lists accepted spellings.
SCORER_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "sd-qa": (("reference", "answer"),),
    "mmsu": (("reference", "answer"),),
    "openbookqa": (("reference", "answer"),),
    "bbh": (("reference", "answer"),),
    "ifeval": (("instruction_id_list",),),
    "short_answer": (("answers", "reference"),),
    "label_choice": (("reference",), ("choices",)),
    "repeat": (("text",),),
    "airbench_foundation": (("answer_gt", "reference", "answer"), ("choices", "choice_a"), ("task_name",)),
    "airbench_chat": (("answer_gt", "reference"), ("meta_info",), ("question",)),
}


class DataError(UserError, ValueError):
    """Input data that cannot be used; the message names the file or data set, the row and the fix."""


@dataclass(frozen=True)
class EvalItem:
    """One question.

    ``prompt`` is the request as text (VoiceBench's ``prompt``, a manifest's spoken text): text mode
    sends it and open-set judges read it; None where a set has no text form. ``question`` is text
    that goes to the model together with the audio (AIR-Bench); None when the speech holds the whole
    request. ``fields`` are the reference fields the scorer reads, recorded with every result.
    """

    id: str
    prompt: str | None
    question: str | None
    audio: AudioLoader
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalSet:
    """A named set of items scored by ``scorer`` (a key of ``eval.scoring.SUBSETS``).

    ``source`` says where the data came from (kind, path or hub id, revision, splits); ``official``
    marks an unmodified VoiceBench subset in its leaderboard split, the only kind that counts toward
    the VoiceBench overall.
    """

    name: str
    scorer: str
    items: list[EvalItem]
    source: dict[str, Any]
    official: bool = False


def decode_audio_bytes(data: bytes, source: str) -> np.ndarray:
    """Encoded audio bytes (wav, flac, ogg, mp3) -> 16 kHz mono float32, with soundfile only."""
    try:
        wave, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises several types for undecodable bytes
        raise AudioError(f"{source}: undecodable audio bytes ({err})") from err
    return prepare_waveform(wave, rate, source=source)


def audio_file(path: Path) -> AudioLoader:
    """A loader for an audio file; a missing or broken file fails when (and only where) it is loaded."""
    return lambda: load_audio(path)


def audio_bytes(data: bytes, source: str) -> AudioLoader:
    """A loader for encoded audio held in memory."""
    return lambda: decode_audio_bytes(data, source)


def missing_fields(scorer: str, row: Mapping[str, Any]) -> list[str]:
    """The scorer's required fields that ``row`` lacks, each as its accepted spellings."""
    return [
        " or ".join(names)
        for names in SCORER_FIELDS.get(scorer, ())
        if not any(row.get(name) is not None for name in names)
    ]


def unique_ids(ids: Sequence[str], where: str) -> None:
    """Results are joined back by id, so two items with one id would overwrite each other."""
    seen: set[str] = set()
    for item_id in ids:
        if item_id in seen:
            raise DataError(f"{where}: id {item_id!r} occurs more than once; ids must be unique")
        seen.add(item_id)
