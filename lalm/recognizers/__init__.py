"""Recognizers: components that turn a clip into text (a transcript), apart from projectors.

A projector is a small differentiable map from encoder frames to LLM embeddings, with a length given
by a formula. A recognizer (a speech model's own decoder, a CTC head with a lexicon and a word search)
writes text: its transcript is rendered into the prompt as ordinary tokens wherever the config's
layout has `{transcript}` (e.g. `<audio><meta>{meta}</meta><text>{transcript}</text></audio>`), before
the LLM runs, so the processor still knows every audio position count from the clip's length.

- `whisper`: the frozen Whisper's own decoder (reads the waveform; no trained weights).
- `phoneme_ctc`: a phoneme CTC head the kit trains (objective `ctc`) over one branch's frozen encoder
  frames, for encoders with no decoder (Zipformer, fbank, ...), decoded through a lexicon and the
  frozen LLM's word search; its weights are part of the checkpoint.

Add one with `@RECOGNIZERS.register("name")` on a `Recognizer` (frozen) or `TrainedRecognizer` subclass.
"""

from __future__ import annotations

from lalm.recognizers import phoneme_ctc, whisper_decoder  # noqa: F401  (registers `phoneme_ctc`, `whisper`)
from lalm.recognizers.base import RECOGNIZERS, FrozenLM, Recognizer, TrainedRecognizer, build_recognizer

__all__ = ["RECOGNIZERS", "FrozenLM", "Recognizer", "TrainedRecognizer", "build_recognizer"]
