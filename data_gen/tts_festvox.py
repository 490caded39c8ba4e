"""The Festvox-family engines, run as programs: flite (CMU Flite) and festival (Festival's diphone voices).

Both speak at 16 kHz with a speed (a multiplier: 1.2 is 20 % faster) and a pitch (the mean F0 in Hz the
intonation model aims at). Text goes through a file or stdin, never the command line, so a text that
starts with '-' is not read as an option; voice names are checked against the installed voices first,
because flite would fetch a voice given as a URL and festival runs a voice name as Scheme.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path
from typing import ClassVar

import numpy as np
import soundfile as sf

from lalm.data_gen.tts import CATALOGUE, TTS, TTS_ENGINES, Range, TTSError, Voice

#: Default pitch ranges (mean F0, Hz) by gender: one range would make female voices sound male or vice versa.
PITCHES_BY_GENDER: dict[str, Range] = {"male": (90, 125), "female": (170, 220)}
FESTIVAL_VOICES = Path("/usr/share/festival/voices")


class FestvoxTTS(TTS):
    """What flite and festival share: speed multiplier, pitch in Hz drawn by gender, a wav file out."""

    SPEEDS = (0.85, 1.15)
    PITCHES = None
    SPEED_LIMITS = (0.5, 2.0)
    PITCH_LIMITS = (50, 400)
    INTEGER_PITCH = True

    def default_pitches(self, gender: str) -> Range | None:
        return self.pitches or PITCHES_BY_GENDER.get(gender, PITCHES_BY_GENDER["male"])

    def synthesise(self, command: list[str], text: str, voice: Voice) -> np.ndarray:
        """Run `command` with {text} and {wav} replaced by file paths; returns the finished clip."""
        with tempfile.TemporaryDirectory(prefix="lalm-tts-") as folder:
            text_file, wav = Path(folder) / "text.txt", Path(folder) / "out.wav"
            text_file.write_text(text, encoding="utf-8")
            filled = [str(text_file) if a == "{text}" else str(wav) if a == "{wav}" else a for a in command]
            result = subprocess.run(filled, capture_output=True, timeout=300, check=False)
            if result.returncode != 0 or not wav.is_file() or wav.stat().st_size <= 44:
                detail = result.stderr.decode(errors="replace").strip() or "no audio"
                raise TTSError(f"{self.NAME} voice {voice.name} failed: {detail}")
            data, rate = sf.read(wav, dtype="float32", always_2d=True)
        return self.finish(data, rate, f"{self.NAME} voice {voice.name}")


@TTS_ENGINES.register("flite")
class FliteTTS(FestvoxTTS):
    """CMU Flite's built-in voices (kal16, rms for training; kal, awb, slt for evaluation)."""

    NAME = "flite"
    INSTALL = "sudo apt-get install flite"
    VOICES: ClassVar[dict[str, str]] = CATALOGUE["flite"]["train"]
    PROGRAM = ("flite", "the flite program")

    def __init__(self, voices: dict[str, str] | None = None, speeds: Range | None = None,
                 pitches: Range | None = None, threads: int | None = None):
        super().__init__(voices, speeds, pitches, threads)
        listing = subprocess.run([self.binary, "-lv"], capture_output=True, text=True, check=False).stdout
        self.installed = listing.partition(":")[2].split()

    def canonical(self, name: str) -> str:
        if name not in self.installed:
            raise ValueError(f"flite has no voice {name!r}; installed: {', '.join(self.installed)}")
        return name

    def speak(self, text: str, voice: Voice) -> np.ndarray:
        command = [self.binary, "-voice", self.canonical(voice.name), "--setf",
                   f"duration_stretch={1 / voice.speed:.4f}", "--setf", f"int_f0_target_mean={voice.pitch}",
                   "-f", "{text}", "-o", "{wav}"]
        return self.synthesise(command, text, voice)


@TTS_ENGINES.register("festival")
class FestivalTTS(FestvoxTTS):
    """Festival's diphone voices (kal_diphone, ked_diphone), through its text2wave script."""

    NAME = "festival"
    INSTALL = "sudo apt-get install festival festvox-kallpc16k festvox-kdlpc16k"
    VOICES: ClassVar[dict[str, str]] = CATALOGUE["festival"]["train"]
    PROGRAM = ("text2wave", "the festival program (text2wave)")

    def canonical(self, name: str) -> str:
        if not re.fullmatch(r"[a-z0-9_]+", name):  # it becomes Scheme code: (voice_NAME)
            raise ValueError(f"festival voice {name!r}: expected a name such as kal_diphone")
        if not any(FESTIVAL_VOICES.glob(f"*/{name}")):
            package = CATALOGUE["festival"]["packages"].get(name)
            hint = f"sudo apt-get install {package}" if package else "install its festvox package"
            raise ValueError(f"festival voice {name} is not installed ({hint})")
        return name

    def speak(self, text: str, voice: Voice) -> np.ndarray:
        # The voice sets its own intonation parameters; ours replace them after it is chosen.
        pitch = (f"(set! int_lr_params '((target_f0_mean {voice.pitch}) (target_f0_std 14) "
                 "(model_f0_mean 170) (model_f0_std 34)))")
        command = [self.binary, "-eval", f"(voice_{self.canonical(voice.name)})", "-eval",
                   f"(Parameter.set 'Duration_Stretch {1 / voice.speed:.4f})", "-eval", pitch,
                   "-o", "{wav}", "{text}"]
        return self.synthesise(command, text, voice)
