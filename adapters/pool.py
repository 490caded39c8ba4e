"""Pooling + MLP: a clip summarised into a fixed number of positions, for what holds over a whole
clip (who speaks, how fast, how high) rather than what is said when."""

from __future__ import annotations

import torch
from torch import nn

from lalm.adapters import PROJECTORS
from lalm.adapters.base import Projector, Standardize, check_positive, valid_mask


@PROJECTORS.register("pool")
class PoolMLP(Projector):
    """Masked mean and standard deviation of a clip's frames, and its log length in frames, then
    Linear -> GELU -> Linear (or one Linear) to `queries` LLM positions.

    The length is an input because a rate is a count over a duration: the LLM reads the words (the
    transcript beside this branch), the projector tells it how long they took. Padded frames never
    enter the statistics, so a clip's output does not depend on its batch.

    The statistics are standardised per dimension by their running mean and variance over the
    training clips (`Standardize`), not per clip: a speech encoder's frames have a few dimensions
    hundreds of times larger than the rest, and a per-clip LayerNorm left what tells voices apart so
    small next to them that the MLP's output was a constant blob the LLM read the same for every
    speaker (gender at chance even on its training clips; docs/quality.md row F).

    A trained pool's positions grow to ~70x the norm of SmolLM2's own embeddings; `out_norm` pins them
    to unit RMS with a learned gain, which measured worse on the demo's voice questions (docs/quality.md
    row C), so it is off by default.

    Options:
        queries: positions per clip.
        hidden: MLP width; defaults to out_dim. 0: no hidden layer, one Linear from the statistics to
            the positions, which extrapolates along a line to statistics outside the training range
            (a voice higher than any training voice reads as higher still; an MLP fitted to the training
            voices can fold back, docs/quality.md row Q).
        out_norm: RMS-normalise each output position (unit RMS, then a learned per-dimension gain).
        standardize: per-dimension running standardisation of the statistics (else a per-clip
            LayerNorm, which measured at chance on gender).
    """

    length_options = ("queries",)

    def __init__(self, in_dim: int, out_dim: int, queries: int = 4, hidden: int | None = None,
                 out_norm: bool = False, standardize: bool = True):
        hidden = out_dim if hidden is None else hidden
        check_positive(queries=queries)
        if hidden != 0:
            check_positive(hidden=hidden)
        super().__init__(in_dim, out_dim)
        self.queries, self.rate_divisor = queries, float("inf")
        self.norm = Standardize(2 * in_dim + 1) if standardize else nn.LayerNorm(2 * in_dim + 1)
        self.mlp = (nn.Linear(2 * in_dim + 1, queries * out_dim) if hidden == 0 else
                    nn.Sequential(nn.Linear(2 * in_dim + 1, hidden), nn.GELU(), nn.Linear(hidden, queries * out_dim)))
        self.out_norm = nn.RMSNorm(out_dim) if out_norm else nn.Identity()

    @staticmethod
    def count(lengths: torch.Tensor, queries: int) -> torch.Tensor:
        return torch.where(lengths > 0, torch.full_like(lengths, queries), torch.zeros_like(lengths))

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = valid_mask(lengths, features.shape[1])[..., None].to(features.dtype)
        n = mask.sum(1).clamp(min=1)
        mean = (features * mask).sum(1) / n
        std = (((features - mean[:, None]) ** 2 * mask).sum(1) / n).clamp(min=1e-6).sqrt()
        stats = torch.cat([mean, std, n.log()], dim=-1)
        out = self.out_norm(self.mlp(self.norm(stats)).view(features.shape[0], self.queries, self.out_dim))
        counts = self.output_lengths(lengths)
        return out * (counts > 0)[:, None, None].to(out.dtype), counts
