"""The recognizer interface and its registry."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from lalm.registry import Registry


class Recognizer(nn.Module):
    """Clips in, transcripts out, a batch at a time.

    `transcribe(waveforms [N, S] at 16 kHz, lengths [N]) -> N texts`. A frozen recognizer (a speech
    model's own decoder) has no trained weights and is never part of a checkpoint's trained state;
    its decoding settings are the config's `options`, which are inference settings: changing them
    changes how a checkpoint decodes, never what it learned.
    """

    #: Whether the recognizer has weights the kit trains (a CTC head); frozen decoders say False.
    trainable: ClassVar[bool] = False

    def transcribe(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        raise NotImplementedError


RECOGNIZERS: Registry[Recognizer] = Registry("recognizer")


def build_recognizer(name: str, path: str | None, options: dict) -> Recognizer:
    """The recognizer registered as `name`, frozen and in eval mode unless it trains."""
    recognizer = RECOGNIZERS.get(name)(path=path, **options)
    if not recognizer.trainable:
        recognizer.eval().requires_grad_(False)
    return recognizer
