"""Pluggable text-to-speech for making spoken data: an engine draws a voice per row and speaks text with it.

Engines (`TTS_ENGINES`): espeak (espeak-ng, the default: robotic, fast, installed by install.sh), piper and
kokoro (neural, ONNX, from pip: `pip install 'lalm-kit[tts]'`), flite and festival (Debian packages).
Each engine lists its voices with their gender (data/tts_voices.json: `train` voices may speak training
data, `eval` voices are kept for held-out evaluation), so every clip carries a known gender label, plus
the engine, accent where known, and the speed and pitch it was drawn with. Every engine's output is
16 kHz mono and loudness-normalised (`finish`), so neither the sample rate nor the level tells engines
apart. Add an engine by subclassing `TTS` in a module imported at the end of this file and registering
it in `TTS_ENGINES`; data_gen/voices.py mixes engines in one voice list.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import subprocess
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import soundfile as sf

from lalm.audio import prepare_waveform
from lalm.errors import UserError
from lalm.registry import Registry

#: engine -> {"train": {voice: gender}, "eval": {voice: gender}, "accent" or "accents"}.
CATALOGUE: dict[str, dict] = json.loads((Path(__file__).parent / "data" / "tts_voices.json").read_text("utf-8"))
#: Speech level every clip is scaled to (RMS of its voiced frames); peaks are kept below PEAK.
TARGET_DBFS = -20.0
PEAK = 0.99

Range = tuple[float, float]
#: piper and kokoro phonemise with the espeak-ng library, whose state is global (and may be one copy for
#: both in a process): one phonemisation at a time, across engines; the ONNX models then run in parallel.
ESPEAK_LIBRARY_LOCK = threading.Lock()


class TTSError(UserError, RuntimeError):
    """Speech synthesis failed for one text."""


class EngineMissing(UserError, RuntimeError):
    """An engine's package is not installed; the message says what to install."""


@dataclass(frozen=True)
class Voice:
    """One drawn voice; `meta()` is what the spoken manifest records about the speaker."""

    name: str
    gender: str
    speed: float
    pitch: float | None = None
    engine: str = "espeak"
    accent: str | None = None

    def meta(self) -> dict:
        meta = {"gender": self.gender, "voice": self.name, "engine": self.engine}
        if self.accent:
            meta["accent"] = self.accent
        meta["speed"] = self.speed
        if self.pitch is not None:  # engines without a pitch control record none
            meta["pitch"] = self.pitch
        return meta


class TTS(ABC):
    """A speech engine with a catalogue of voices and ranges of speed and pitch to draw from."""

    #: the engine's name in TTS_ENGINES (checked by the tests).
    NAME: ClassVar[str] = ""
    #: what to install when the engine is missing (pip or Debian packages).
    INSTALL: ClassVar[str] = ""
    #: voice name -> gender of the voices an engine offers by default (training voices).
    VOICES: ClassVar[dict[str, str]] = {}
    #: inclusive (low, high) ranges drawn from uniformly, in the engine's own units; PITCHES None: no pitch.
    SPEEDS: ClassVar[Range] = (0, 0)
    PITCHES: ClassVar[Range | None] = (0, 0)
    #: the ranges an engine accepts, so `--speeds 130-200` meant for espeak fails early on kokoro.
    SPEED_LIMITS: ClassVar[Range] = (0.5, 2.0)
    PITCH_LIMITS: ClassVar[Range | None] = None
    #: espeak-ng's units are integers (words per minute, 0-99); others are multipliers, drawn to 2 decimals.
    INTEGER: ClassVar[bool] = False
    #: pitches in whole units (espeak-ng's 0-99, Festvox's Hz)
    INTEGER_PITCH: ClassVar[bool] = False

    #: (program, how the error names it) for engines that run as a program on the PATH; None otherwise.
    PROGRAM: ClassVar[tuple[str, str] | None] = None

    def __init__(self, voices: dict[str, str] | None = None, speeds: Range | None = None,
                 pitches: Range | None = None, threads: int | None = None):
        self.voices = voices or dict(self.VOICES)
        self.speeds = self.check_range(speeds, "speed") or self.SPEEDS
        self.pitches = self.check_range(pitches, "pitch") or self.PITCHES
        self.threads = threads
        if self.PROGRAM is not None:  # engines run as programs: found once, or the install is named
            program, what = self.PROGRAM
            self.binary = shutil.which(program)
            if self.binary is None:
                raise self.missing(what)

    @classmethod
    def known_voices(cls) -> dict[str, str]:
        """Training and evaluation voices of the catalogue, with their genders."""
        entry = CATALOGUE.get(cls.NAME, {})
        return {**entry.get("eval", {}), **entry.get("train", {})}

    @classmethod
    def is_training_voice(cls, name: str) -> bool:
        return name in CATALOGUE.get(cls.NAME, {}).get("train", {})

    @classmethod
    def spec_name(cls, name: str) -> str:
        """A voice name as written in a spec, normalised (kokoro blends); ValueError when malformed.
        Needs no installed engine, so voice lists are checked before anything loads."""
        return name

    @classmethod
    def gender_of(cls, name: str) -> str | None:
        """The catalogue's gender of a voice, None where the catalogue does not know it."""
        return cls.known_voices().get(name)

    def canonical(self, name: str) -> str:
        """The voice's name as recorded; raises ValueError for a voice this installation cannot speak."""
        return self.spec_name(name)

    def prepare(self, name: str) -> None:
        """Load what speaking with `name` needs (a model), so a broken install fails before the first row."""

    def accent_of(self, name: str) -> str | None:
        entry = CATALOGUE.get(self.NAME, {})
        return entry.get("accents", {}).get(name, entry.get("accent"))

    def default_pitches(self, gender: str) -> Range | None:
        return self.pitches

    def check_range(self, span: Range | None, what: str) -> Range | None:
        limits = self.SPEED_LIMITS if what == "speed" else self.PITCH_LIMITS
        if span is None:
            return None
        if limits is None:
            raise ValueError(f"the {self.NAME} engine has no {what} control")
        integer = self.INTEGER if what == "speed" else self.INTEGER_PITCH
        if integer and not all(float(v).is_integer() for v in span):
            raise ValueError(f"{self.NAME} {what} {span[0]:g}-{span[1]:g}: expected whole numbers")
        if not limits[0] <= span[0] <= span[1] <= limits[1]:
            raise ValueError(f"{self.NAME} {what} {span[0]:g}-{span[1]:g} is outside the engine's "
                             f"{limits[0]:g}-{limits[1]:g}")
        return span

    def draw(self, rng: random.Random) -> Voice:
        """A voice, speed and pitch; seed `rng` per row so a rerun draws the same voice for the same row."""
        name = rng.choice(sorted(self.voices))
        return self.make_voice(name, self.voices[name], rng)

    def make_voice(self, name: str, gender: str, rng: random.Random, speeds: Range | None = None,
                   pitches: Range | None = None) -> Voice:
        """`name` with a speed and pitch drawn from the given ranges (default: the engine's)."""
        pitches = pitches or self.default_pitches(gender)
        return Voice(name, gender, uniform(rng, speeds or self.speeds, self.INTEGER),
                     uniform(rng, pitches, self.INTEGER_PITCH) if pitches else None, self.NAME,
                     self.accent_of(name))

    @abstractmethod
    def speak(self, text: str, voice: Voice) -> np.ndarray:
        """`text` spoken by `voice` as 16 kHz mono float32; raises TTSError when that fails."""

    def finish(self, data: np.ndarray, rate: int, source: str) -> np.ndarray:
        """An engine's raw output as every engine's clips are: 16 kHz mono at the same loudness."""
        return normalise_loudness(prepare_waveform(data, rate, source=source))

    def missing(self, what: str) -> EngineMissing:
        return EngineMissing(f"the {self.NAME} TTS engine needs {what}: {self.INSTALL}")


def uniform(rng: random.Random, span: Range, integer: bool) -> float:
    """A value drawn uniformly from the inclusive range: a whole number, or rounded to 2 decimals."""
    if integer:
        return rng.randint(int(span[0]), int(span[1]))
    return round(rng.uniform(*span), 2)


def normalise_loudness(audio: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """Scale a clip so its voiced frames (20 ms, within 40 dB of the loudest) have RMS `target_dbfs`.

    Pauses are left out of the measure, so a clip with long silences is not made louder than one without;
    the gain is capped so that no sample exceeds PEAK (a clip is never clipped).
    """
    frame = 320
    usable = audio[: len(audio) // frame * frame].reshape(-1, frame) if len(audio) >= frame else audio[None]
    energy = np.mean(usable.astype(np.float64) ** 2, axis=1)
    if energy.max() <= 0:
        return audio
    voiced = energy[energy >= energy.max() * 1e-4]
    gain = 10 ** (target_dbfs / 20) / np.sqrt(voiced.mean())
    gain = min(gain, PEAK / float(np.abs(audio).max()))
    return (audio * gain).astype(np.float32)


def run_engine(command: list[str], text: str | None, what: str) -> tuple[np.ndarray, int]:
    """Run a synthesiser that writes a wav to stdout; returns (samples, rate) decoded, or raises TTSError."""
    result = subprocess.run(command, input=text.encode("utf-8") if text is not None else None,
                            capture_output=True, timeout=300, check=False)
    if result.returncode != 0 or not result.stdout:
        raise TTSError(f"{what} failed: {result.stderr.decode(errors='replace').strip() or 'no audio'}")
    return sf.read(io.BytesIO(result.stdout), dtype="float32", always_2d=True)


TTS_ENGINES: Registry[TTS] = Registry("tts engine")


@TTS_ENGINES.register("espeak")
class EspeakTTS(TTS):
    """espeak-ng voices `LANGUAGE+VARIANT` (en+m3, en-us+f5, ...); speed in words per minute, pitch 0-99."""

    NAME = "espeak"
    INSTALL = "sudo apt-get install espeak-ng"
    VOICES: ClassVar[dict[str, str]] = CATALOGUE["espeak"]["train"]
    SPEEDS = (140, 190)
    PITCHES = (35, 65)
    SPEED_LIMITS = (80, 450)
    PITCH_LIMITS = (0, 99)
    INTEGER = True
    INTEGER_PITCH = True
    PROGRAM = ("espeak-ng", "the espeak-ng program")

    @classmethod
    def is_training_voice(cls, name: str) -> bool:
        """Any espeak-ng voice may speak training data (the demo keeps some for evaluation by its own choice)."""
        return True

    def accent_of(self, name: str) -> str | None:
        return CATALOGUE["espeak"]["accents"].get(name.partition("+")[0])

    def speak(self, text: str, voice: Voice) -> np.ndarray:
        # Text goes through stdin so that a text starting with '-' is never read as an option.
        command = [self.binary, "-v", voice.name, "-s", str(voice.speed), "-p", str(voice.pitch), "-b", "1",
                   "--stdout", "--stdin"]
        data, rate = run_engine(command, text, f"espeak-ng -v {voice.name}")
        return self.finish(data, rate, f"espeak-ng -v {voice.name}")


# The other engines register themselves; imported last because they subclass TTS from this module.
from lalm.data_gen import tts_festvox, tts_kokoro, tts_piper  # noqa: F401
