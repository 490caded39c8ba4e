"""The audio encoder interface every encoder in the registry implements.

An encoder takes 16 kHz mono waveforms padded into one batch, plus each clip's true length in
samples, and returns features [B, T, D] plus each clip's number of valid frames. Frames past a
clip's length are padding: the model never lets them reach the LLM. Encoders are frozen in the
kit, so they only need to be correct and fast in eval mode.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable

import torch
from torch import nn

SAMPLE_RATE = 16_000


def weights_name(path: str | None, random_config: dict | None, seed: int) -> str:
    """The weights' part of an encoder's identity: the path, or for random weights the seed and the
    architecture (two random shapes with one seed are different encoders to a feature cache)."""
    if path is not None:
        return path
    shape = hashlib.sha1(json.dumps(random_config, sort_keys=True).encode()).hexdigest()[:8]
    return f"random-{seed}-{shape}"


class AudioEncoder(nn.Module):
    """Base class. Subclasses set `dim` and `frame_rate` and implement the two methods below.

    Attributes:
        dim: width D of the output features.
        frame_rate: output frames per second of audio (Whisper: 50, Zipformer: 25).
        identity: a string naming the encoder and its weights; feature caches key on it.
        has_weights: False for an encoder with nothing to load (a config then sets neither `path`
            nor `random_config`).
    """

    dim: int
    frame_rate: float
    identity: str = "random"
    has_weights: bool = True

    @staticmethod
    def count(num_samples: torch.Tensor, **length_params: int) -> torch.Tensor:
        """Valid output frames for clips of `num_samples` samples: the one length rule of the class."""
        raise NotImplementedError

    @classmethod
    def length_params(cls, path: str | None, random_config: dict | None) -> dict:
        """What `count` needs beyond the sample count, read from the config (and at most the weights'
        small config file), never from the weights: a processor is built from the config alone."""
        return {}

    def output_lengths(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Valid output frames for clips of `num_samples` samples (LongTensor in, LongTensor out)."""
        return self.count(torch.as_tensor(num_samples), **self.own_length_params())

    def own_length_params(self) -> dict:
        """`length_params` of this built encoder (subclasses with parameters override it)."""
        return {}

    @classmethod
    def length_rule(cls, path: str | None, random_config: dict | None) -> Callable[[torch.Tensor], torch.Tensor]:
        """`output_lengths` from the config alone, without building the encoder."""
        return functools.partial(cls.count, **cls.length_params(path, random_config))

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """waveforms [B, S] float at 16 kHz (zero-padded), lengths [B] samples -> (features [B, T, D], lengths [B])."""
        raise NotImplementedError
