"""The Ultravox projector: frame stacking with RMSNorms around a SwiGLU MLP."""

from __future__ import annotations

import torch
from torch import nn

from lalm.adapters import PROJECTORS
from lalm.adapters.base import StackingProjector, check_positive


class SwiGLU(nn.Module):
    """Gated activation: half the features gate the other half, so the width halves."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = x.chunk(2, dim=-1)
        return nn.functional.silu(gate) * x


@PROJECTORS.register("ultravox")
class UltravoxProjector(StackingProjector):
    """Stack k frames -> RMSNorm -> Linear(2*mid) -> SwiGLU -> RMSNorm -> Linear.

    The norms put the frozen encoder's and the frozen LLM's very different activation scales
    on a common footing, which makes the projector train stably at higher learning rates.

    Options:
        k: frames per output frame (Ultravox's stack factor).
        hidden: width of the first Linear, halved by SwiGLU; must be even. Defaults to
            2 * out_dim, so the gated width equals out_dim.
    """

    def __init__(self, in_dim: int, out_dim: int, k: int = 8, hidden: int | None = None):
        super().__init__(in_dim, out_dim, k)
        hidden = 2 * out_dim if hidden is None else hidden
        check_positive(hidden=hidden)
        if hidden % 2:
            raise ValueError(f"hidden must be even (SwiGLU splits it in half), got {hidden}")
        self.net = nn.Sequential(
            nn.RMSNorm(in_dim * k, eps=1e-6),
            nn.Linear(in_dim * k, hidden),
            SwiGLU(),
            nn.RMSNorm(hidden // 2, eps=1e-6),
            nn.Linear(hidden // 2, out_dim),
        )

    def project(self, groups: torch.Tensor) -> torch.Tensor:
        return self.net(groups.flatten(2))
