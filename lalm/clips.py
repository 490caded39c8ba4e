"""The clip unit: one clip's frozen-encoder outputs, whatever produced them.

The encoders are frozen, so a clip's features never change: inference keeps them across the turns of
a conversation, training keeps them on disk (the feature cache). Both hold the same `EncodedClip`,
and every batch of clips reaches the projectors through the same `batch_clips`, zero-padded, so a
clip gives the projectors the same input whether it was just encoded, reused or read from the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lalm.audio import load_audio


@dataclass
class EncodedClip:
    """A clip already through the frozen encoders: reuse it instead of encoding it again."""

    samples: int  # the clip's length in samples at 16 kHz
    features: dict[str, torch.Tensor]  # branch -> [T, D] encoder output, its valid frames only
    transcript: str | None = None  # the model's recognizer's text for the clip, where it has one


#: What the kit takes as a clip: a file, 16 kHz mono samples, or a clip already encoded.
AudioInput = str | Path | np.ndarray | torch.Tensor | EncodedClip
Encoded = dict[str, tuple[torch.Tensor, torch.Tensor]]  # branch -> (features [N, T, D], lengths [N])


def as_waveform(audio: str | Path | np.ndarray | torch.Tensor) -> torch.Tensor:
    """A file path or a 16 kHz mono array as a float32 tensor."""
    if isinstance(audio, (str, Path)):
        audio = load_audio(audio)
    if isinstance(audio, torch.Tensor):
        return audio.float().flatten()
    return torch.as_tensor(np.asarray(audio, dtype=np.float32))


def pad_waveforms(clips: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Waveforms zero-padded into one batch [N, S], with their lengths [N]."""
    if not clips:
        return torch.zeros(0, 1), torch.zeros(0, dtype=torch.long)
    lengths = torch.tensor([c.numel() for c in clips])
    return nn.utils.rnn.pad_sequence(clips, batch_first=True), lengths


@torch.no_grad()
def encode_clips(encode_audio: Callable[[torch.Tensor, torch.Tensor], Encoded], audio: list[AudioInput],
                 device: torch.device | str,
                 transcribe: Callable[[torch.Tensor, torch.Tensor, Encoded], list[str]] | None = None
                 ) -> list[EncodedClip]:
    """Clips through frozen encoders: those not encoded yet go as one padded batch (`encode_audio`
    takes waveforms [N, S] and lengths [N] on `device`); encoded clips pass through as they are.
    With `transcribe` (a recognizer: the same waveforms and lengths, and the batch's encoder outputs,
    for one that reads a branch's frames), each new clip also keeps its transcript."""
    todo = [i for i, a in enumerate(audio) if not isinstance(a, EncodedClip)]
    clips = list(audio)
    if todo:
        waves, lengths = pad_waveforms([as_waveform(audio[i]) for i in todo])
        waves, lengths = waves.to(device), lengths.to(device)
        encoded = encode_audio(waves, lengths)
        texts = transcribe(waves, lengths, encoded) if transcribe is not None else [None] * len(todo)
        for i, clip, text in zip(todo, split_clips(encoded, lengths.tolist()), texts):
            clip.transcript = text
            clips[i] = clip
    return clips


def split_clips(encoded: Encoded, samples: list[int]) -> list[EncodedClip]:
    """A padded encoder batch {branch: (features [N, T, D], lengths [N])} as N clips."""
    return [EncodedClip(n, {name: feats[i, : int(lengths[i])] for name, (feats, lengths) in encoded.items()})
            for i, n in enumerate(samples)]


def batch_clips(clips: list[EncodedClip], branches: list[str],
                device: torch.device | str | None = None) -> Encoded:
    """Clips padded into one batch per branch, zeros past each clip's frames:
    {branch: (features [N, T, D], lengths [N])}, on `device` (default: where the features are)."""
    out = {}
    for name in branches:
        feats = [c.features[name] for c in clips]
        if device is not None:
            feats = [f.to(device) for f in feats]
        lengths = torch.tensor([f.shape[0] for f in feats], device=feats[0].device if feats else device)
        out[name] = (nn.utils.rnn.pad_sequence(feats, batch_first=True), lengths)
    return out
