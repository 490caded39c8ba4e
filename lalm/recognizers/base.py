"""The recognizer interface and its registry."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from lalm.registry import Registry


@dataclass(frozen=True)
class FrozenLM:
    """The model's frozen LLM and its tokenizer, lent to a recognizer that scores words with it.

    A plain object, not a module: a recognizer holding it never trains, saves or moves the LLM."""

    llm: nn.Module
    tokenizer: Any


class Recognizer(nn.Module):
    """Clips in, transcripts out, a batch at a time.

    `transcribe(inputs, lengths) -> N texts`. A frozen recognizer (a speech model's own decoder) reads
    waveforms [N, S] at 16 kHz with lengths [N]; it has no trained weights and is never part of a
    checkpoint's trained state. A trained one (`TrainedRecognizer`) reads a branch's frozen encoder
    frames instead. Either way its decoding settings are the config's `options`, which are inference
    settings: changing them changes how a checkpoint decodes, never what it learned.
    """

    #: Whether the recognizer has weights the kit trains (a CTC head); frozen decoders say False.
    trainable: ClassVar[bool] = False
    #: Constructor options that shape what it learned (config `recognizer.head`, fixed once trained);
    #: the others are decoding settings (config `recognizer.options`).
    head_options: ClassVar[tuple[str, ...]] = ()
    #: Constructor arguments the model sets, never given in the config.
    reserved: ClassVar[tuple[str, ...]] = ("path",)

    def transcribe(self, inputs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        raise NotImplementedError

    @classmethod
    def config_problems(cls, head: dict, options: dict, where: str) -> list[str]:
        """Problems a config's settings would meet when the recognizer is built (a missing file), found
        at config time, before any weights load. Option names and types are checked apart from this."""
        return []

    @classmethod
    def decoding_option_names(cls) -> list[str]:
        params = list(inspect.signature(cls.__init__).parameters)[1:]
        return [p for p in params if p not in cls.reserved and p not in cls.head_options]


class TrainedRecognizer(Recognizer):
    """A recognizer the kit trains: a head over the frozen encoder frames of one branch (config
    `recognizer.branch`), so the frames are computed once for the branch and the recognizer.

    `loss(frames, lengths, transcripts)` is its training loss from the transcripts' text (objective
    `ctc`); its weights are part of a checkpoint's trained state. `transcribe(frames, lengths, fused)`
    decodes; `fused=False` leaves the frozen LLM out (what training measures).
    """

    trainable = True
    reserved = ("path", "in_dim", "lm")

    def loss(self, frames: torch.Tensor, lengths: torch.Tensor, transcripts: list[str]) -> tuple[torch.Tensor, int]:
        """(summed loss over the batch, target units it was summed over)."""
        raise NotImplementedError

    def transcribe(self, frames: torch.Tensor, lengths: torch.Tensor, fused: bool = True) -> list[str]:
        raise NotImplementedError


RECOGNIZERS: Registry[Recognizer] = Registry("recognizer")


def build_recognizer(name: str, path: str | None, options: dict, *, head: dict | None = None,
                     in_dim: int | None = None, lm: FrozenLM | None = None) -> Recognizer:
    """The recognizer registered as `name`: frozen and in eval mode unless it trains.

    A trained recognizer also gets its `head` settings, the width `in_dim` of the branch's encoder
    frames it reads and the model's frozen LLM (`lm`, for decoding); a frozen one takes `path`."""
    cls = RECOGNIZERS.get(name)
    if cls.trainable:
        recognizer = cls(in_dim=in_dim, lm=lm, **(head or {}), **options)
    else:
        if head:
            raise ValueError(f"recognizer {name!r} is frozen: it has no head settings, got {sorted(head)}")
        recognizer = cls(path=path, **options)
    if not recognizer.trainable:
        recognizer.eval().requires_grad_(False)
    return recognizer
