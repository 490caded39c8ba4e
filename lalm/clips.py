"""The clip unit: one clip's frozen-encoder outputs, whatever produced them.

The encoders are frozen, so a clip's features never change: inference keeps them across the turns of
a conversation, training keeps them on disk (the feature cache). Both hold the same `EncodedClip`,
and every batch of clips reaches the projectors through the same `batch_clips`, zero-padded, so a
clip gives the projectors the same input whether it was just encoded, reused or read from the cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class EncodedClip:
    """A clip already through the frozen encoders: reuse it instead of encoding it again."""

    samples: int  # the clip's length in samples at 16 kHz
    features: dict[str, torch.Tensor]  # branch -> [T, D] encoder output, its valid frames only


def split_clips(encoded: dict[str, tuple[torch.Tensor, torch.Tensor]], samples: list[int]) -> list[EncodedClip]:
    """A padded encoder batch {branch: (features [N, T, D], lengths [N])} as N clips."""
    return [EncodedClip(n, {name: feats[i, : int(lengths[i])] for name, (feats, lengths) in encoded.items()})
            for i, n in enumerate(samples)]


def batch_clips(clips: list[EncodedClip], branches: list[str],
                device: torch.device | str | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
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
