"""Frame stacking + a two-layer MLP: the AZeroS projector, the simplest that works well."""

from __future__ import annotations

import torch
from torch import nn

from lalm.adapters import PROJECTORS
from lalm.adapters.base import StackingProjector, check_positive


@PROJECTORS.register("stack_mlp")
class StackMLP(StackingProjector):
    """Concatenates k frames along features, then Linear -> ReLU -> Linear.

    Stacking (rather than pooling) keeps every frame's detail for the MLP to mix. AZeroS uses
    k=4 on 25 Hz encoders; the default k=8 brings Whisper's 50 Hz to the same 6.25 Hz.

    Options:
        k: frames per output frame.
        hidden: MLP width; defaults to out_dim.
        drop_tail: drop a clip's last partial group (floor(T/k) outputs) instead of zero-padding it
            (ceil(T/k)); the released AZeroS projectors were trained that way (`lalm.azeros_import`).
    """

    length_options = ("k", "drop_tail")

    def __init__(self, in_dim: int, out_dim: int, k: int = 8, hidden: int | None = None,
                 drop_tail: bool = False):
        super().__init__(in_dim, out_dim, k)
        hidden = out_dim if hidden is None else hidden
        check_positive(hidden=hidden)
        self.drop_tail = bool(drop_tail)
        self.mlp = nn.Sequential(nn.Linear(in_dim * k, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    @staticmethod
    def count(lengths: torch.Tensor, k: int, drop_tail: bool = False) -> torch.Tensor:
        # With drop_tail the partial group is still projected, then cut by the lengths (and zeroed).
        return lengths // k if drop_tail else StackingProjector.count(lengths, k)

    def project(self, groups: torch.Tensor) -> torch.Tensor:
        return self.mlp(groups.flatten(2))
