"""A strided-convolution downsampler followed by an MLP."""

from __future__ import annotations

import torch
from torch import nn

from lalm.adapters import PROJECTORS
from lalm.adapters.base import StackingProjector, check_positive


@PROJECTORS.register("conv")
class ConvProjector(StackingProjector):
    """Conv1d (kernel k, stride k) -> GELU -> Linear -> GELU -> Linear.

    With kernel == stride each output frame sees exactly one group of k frames, so the length
    rule and padding behaviour match the stacking projectors. The GELU after the convolution
    keeps it from collapsing into the first Linear (two linear maps compose into one).

    Options:
        k: kernel size and stride, i.e. frames per output frame.
        hidden: conv channels and MLP width; defaults to out_dim.
    """

    def __init__(self, in_dim: int, out_dim: int, k: int = 8, hidden: int | None = None):
        super().__init__(in_dim, out_dim, k)
        hidden = out_dim if hidden is None else hidden
        check_positive(hidden=hidden)
        self.conv = nn.Conv1d(in_dim, hidden, kernel_size=k, stride=k)
        self.mlp = nn.Sequential(nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, out_dim))

    def project(self, groups: torch.Tensor) -> torch.Tensor:
        frames = groups.flatten(1, 2).transpose(1, 2)  # [B, in_dim, N * k]
        return self.mlp(self.conv(frames).transpose(1, 2))
