"""Pluggable text-to-speech for making spoken data: an engine draws a voice per row and speaks text with it.

Each engine lists its voices with their gender, so every clip it makes carries a known gender label,
plus the speed and pitch it was drawn with. espeak-ng is the embedded default: robotic, but offline,
fast and installed by install.sh. Add an engine by subclassing `TTS` and registering it in `TTS_ENGINES`.
"""

from __future__ import annotations

import io
import random
import shutil
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import soundfile as sf

from lalm.audio import prepare_waveform
from lalm.errors import UserError
from lalm.registry import Registry


class TTSError(UserError, RuntimeError):
    """Speech synthesis failed for one text."""


@dataclass(frozen=True)
class Voice:
    """One drawn voice; `meta()` is what the spoken manifest records about the speaker."""

    name: str
    gender: str
    speed: int
    pitch: int

    def meta(self) -> dict:
        return {"gender": self.gender, "voice": self.name, "speed": self.speed, "pitch": self.pitch}


class TTS(ABC):
    """A speech engine with a catalogue of voices and ranges of speed and pitch to draw from."""

    #: voice name -> gender of the voices an engine offers by default.
    VOICES: ClassVar[dict[str, str]] = {}
    #: inclusive (low, high) ranges drawn from uniformly, in the engine's own units.
    SPEEDS: ClassVar[tuple[int, int]] = (0, 0)
    PITCHES: ClassVar[tuple[int, int]] = (0, 0)

    def __init__(self, voices: dict[str, str] | None = None, speeds: tuple[int, int] | None = None,
                 pitches: tuple[int, int] | None = None):
        self.voices = voices or dict(self.VOICES)
        self.speeds = speeds or self.SPEEDS
        self.pitches = pitches or self.PITCHES

    def draw(self, rng: random.Random) -> Voice:
        """A voice, speed and pitch; seed `rng` per row so a rerun draws the same voice for the same row."""
        name = rng.choice(sorted(self.voices))
        return Voice(name, self.voices[name], rng.randint(*self.speeds), rng.randint(*self.pitches))

    @abstractmethod
    def speak(self, text: str, voice: Voice) -> np.ndarray:
        """`text` spoken by `voice` as 16 kHz mono float32; raises TTSError when that fails."""


TTS_ENGINES: Registry[TTS] = Registry("tts engine")


@TTS_ENGINES.register("espeak")
class EspeakTTS(TTS):
    """espeak-ng voices `en+<variant>`; speed in words per minute, pitch 0-99."""

    VOICES: ClassVar[dict[str, str]] = {"en+m3": "male", "en+m7": "male", "en+f2": "female", "en+f4": "female"}
    SPEEDS = (140, 190)
    PITCHES = (35, 65)

    def __init__(self, voices: dict[str, str] | None = None, speeds: tuple[int, int] | None = None,
                 pitches: tuple[int, int] | None = None):
        super().__init__(voices, speeds, pitches)
        self.binary = shutil.which("espeak-ng")
        if self.binary is None:
            raise FileNotFoundError("espeak-ng is not installed (sudo apt-get install espeak-ng)")

    def speak(self, text: str, voice: Voice) -> np.ndarray:
        # Text goes through stdin so that a text starting with '-' is never read as an option.
        command = [self.binary, "-v", voice.name, "-s", str(voice.speed), "-p", str(voice.pitch), "-b", "1",
                   "--stdout", "--stdin"]
        result = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, timeout=300,
                                check=False)
        if result.returncode != 0 or not result.stdout:
            raise TTSError(f"espeak-ng -v {voice.name} failed: {result.stderr.decode(errors='replace').strip()}")
        data, rate = sf.read(io.BytesIO(result.stdout), dtype="float32", always_2d=True)
        return prepare_waveform(data, rate, source=f"espeak-ng -v {voice.name}")
