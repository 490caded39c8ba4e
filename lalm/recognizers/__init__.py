"""Recognizers: components that turn a clip into text (a transcript), apart from projectors.

A projector is a small differentiable map from encoder frames to LLM embeddings, with a length given
by a formula. A recognizer (a speech model's own decoder, a CTC head with a lexicon and a word search)
writes text: its transcript is rendered into the prompt as ordinary tokens wherever the config's
layout has `{transcript}` (e.g. `<audio><meta>{meta}</meta><text>{transcript}</text></audio>`), before
the LLM runs, so the processor still knows every audio position count from the clip's length.

Add one with `@RECOGNIZERS.register("name")` on a `Recognizer` subclass.
"""

from __future__ import annotations

from lalm.recognizers import whisper_decoder  # noqa: F401  (registers `whisper`)
from lalm.recognizers.base import RECOGNIZERS, Recognizer, build_recognizer

__all__ = ["RECOGNIZERS", "Recognizer", "build_recognizer"]
