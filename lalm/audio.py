"""Reading audio files into 16 kHz mono float32, with errors that name the file and the problem."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lalm.encoders.base import SAMPLE_RATE
from lalm.errors import UserError

#: Longer clips are almost always a wrong file (a whole podcast, a concatenated corpus).
MAX_SECONDS = 600.0
#: Per clip in a conversation: the one default of the terminal chat and the server (`--max-audio-seconds`
#: on both), so a clip the chat takes is one the server takes too.
MAX_CLIP_SECONDS = 120.0
#: Sample rates audio is recorded at (telephone 8 kHz, old corpora lower, studio 192 kHz); outside them a
#: header is almost always wrong (a 1 Hz file would be resampled into hours of one value).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 192_000


class AudioError(UserError, ValueError):
    """A clip that cannot be used. The message names the file and what is wrong with it."""


@dataclass(frozen=True)
class AudioInfo:
    path: str
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def audio_io(name: str):
    """soundfile or soxr, imported when audio is first read or resampled: the in-memory paths (the GPU
    benchmarks, a model fed arrays) work where they are missing, and a file read there says what to install."""
    try:
        return importlib.import_module(name)
    except (ImportError, OSError) as err:  # soundfile raises OSError when libsndfile is missing
        raise ImportError(f"{name} is needed to read or resample audio files ({err}); pip install {name}") from err


def probe_audio(path: str | Path, max_seconds: float = MAX_SECONDS, setting: str = "max_seconds") -> AudioInfo:
    """Check that a file exists, is readable and has a sane length, without decoding it all.
    `setting` names the limit in the error: what the caller's user would raise."""
    path = str(path)
    if not Path(path).is_file():
        raise AudioError(f"{path}: no such audio file")
    sf = audio_io("soundfile")  # outside the try: a missing package is not an unreadable file
    try:
        info = sf.info(path)
    except Exception as err:  # soundfile raises several types for unreadable files
        raise AudioError(f"{path}: unreadable audio ({err}); convert it to wav/flac/ogg/mp3") from err
    if info.frames <= 0:
        raise AudioError(f"{path}: the file holds no audio samples")
    duration = info.frames / info.samplerate
    if duration > max_seconds:
        raise AudioError(
            f"{path}: {duration:.0f} s of audio is longer than the {max_seconds:.0f} s limit; "
            f"split it into utterances or raise {setting}"
        )
    check_sample_rate(info.samplerate, path)
    return AudioInfo(path, info.samplerate, info.channels, info.frames)


def check_sample_rate(rate: float, source: str) -> None:
    """An AudioError for a sample rate no recording has (a broken header, or an array's wrong rate)."""
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(f"{source}: a sample rate of {rate:g} Hz is outside {MIN_SAMPLE_RATE:,}-{MAX_SAMPLE_RATE:,} Hz; "
                         "the file's header is likely wrong (resample or re-export it)")


def load_audio(path: str | Path, max_seconds: float = MAX_SECONDS, setting: str = "max_seconds") -> np.ndarray:
    """Decode a wav/flac/ogg/mp3 file to 16 kHz mono float32 in [-1, 1]."""
    info = probe_audio(path, max_seconds, setting)
    sf = audio_io("soundfile")
    try:
        data, rate = sf.read(info.path, dtype="float32", always_2d=True)
    except Exception as err:
        raise AudioError(f"{info.path}: decoding failed ({err})") from err
    return prepare_waveform(data, rate, source=info.path, max_seconds=max_seconds)


def prepare_waveform(
    data: np.ndarray, sample_rate: int, source: str = "<array>", max_seconds: float = MAX_SECONDS
) -> np.ndarray:
    """Downmix [frames, channels] or [frames] audio to mono, resample to 16 kHz and validate it."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data.mean(axis=1)
    if data.ndim != 1:
        raise AudioError(f"{source}: expected [samples] or [samples, channels] audio, got shape {data.shape}")
    if data.size == 0:
        raise AudioError(f"{source}: the audio is empty")
    if not np.isfinite(data).all():
        raise AudioError(f"{source}: the audio contains NaN or infinite samples")
    if data.size / sample_rate > max_seconds:
        raise AudioError(f"{source}: {data.size / sample_rate:.0f} s is longer than the {max_seconds:.0f} s limit")
    check_sample_rate(sample_rate, source)
    if sample_rate != SAMPLE_RATE:
        # soxr's VHQ mode is a proper band-limited resampler (no aliasing from naive decimation).
        data = audio_io("soxr").resample(data, sample_rate, SAMPLE_RATE, quality="VHQ").astype(np.float32)
    if data.size < SAMPLE_RATE // 100:
        raise AudioError(f"{source}: {data.size} samples at 16 kHz is shorter than 10 ms")
    return data
