"""A window-level Q-Former (SALMONN): learned queries summarise fixed windows of frames."""

from __future__ import annotations

import torch
from torch import nn

from lalm.adapters import PROJECTORS
from lalm.adapters.base import Projector, ceil_div, check_positive, group_frames, valid_mask


class Attention(nn.Module):
    """Multi-head attention on torch's fused scaled_dot_product_attention kernels."""

    def __init__(self, dim: int, context_dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(context_dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x [N, Lq, dim] attends to context [N, Lk, context_dim]; mask [N, Lk] is True where allowed."""
        n, lq, dim = x.shape
        heads, head_dim = self.num_heads, dim // self.num_heads
        q = self.q(x).view(n, lq, heads, head_dim).transpose(1, 2)
        k, v = self.kv(context).view(n, context.shape[1], 2, heads, head_dim).permute(2, 0, 3, 1, 4)
        attn_mask = None if mask is None else mask[:, None, None, :]
        y = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out(y.transpose(1, 2).reshape(n, lq, dim))


class QFormerLayer(nn.Module):
    """Pre-norm block: queries talk to each other, read their window, then a feed-forward.

    A single query's self-attention is a fixed linear map of itself (softmax over one key is 1),
    which the feed-forward already covers and whose query/key weights would never train, so it
    is only built for two or more queries.
    """

    def __init__(self, dim: int, frame_dim: int, num_heads: int, num_queries: int):
        super().__init__()
        self.self_norm = nn.LayerNorm(dim) if num_queries > 1 else None
        self.self_attn = Attention(dim, dim, num_heads) if num_queries > 1 else None
        self.cross_norm = nn.LayerNorm(dim)
        self.cross_attn = Attention(dim, frame_dim, num_heads)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, queries: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.self_attn is not None:
            h = self.self_norm(queries)
            queries = queries + self.self_attn(h, h)
        queries = queries + self.cross_attn(self.cross_norm(queries), frames, mask)
        return queries + self.ff(self.ff_norm(queries))


@PROJECTORS.register("window_qformer")
class WindowQFormer(Projector):
    """Each window of `window` frames becomes `num_queries` output frames.

    Windows keep the output length a function of the input length (unlike one Q-Former over the
    whole clip) and keep attention local and cheap. All windows of a batch run as one batch;
    windows holding only padding are skipped, and the padded frames of a clip's last window are
    masked out of attention, so a clip's output never depends on its batch-mates.

    Options:
        window: frames per window.
        num_queries: learned queries (output frames) per window.
        num_layers: transformer layers.
        dim: query width; defaults to in_dim.
        num_heads: attention heads; must divide dim.
    """

    length_options = ("window", "num_queries")

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        window: int = 8,
        num_queries: int = 1,
        num_layers: int = 2,
        dim: int | None = None,
        num_heads: int = 8,
    ):
        super().__init__(in_dim, out_dim)
        dim = in_dim if dim is None else dim
        check_positive(
            window=window, num_queries=num_queries, num_layers=num_layers, dim=dim, num_heads=num_heads
        )
        if dim % num_heads:
            raise ValueError(f"num_heads ({num_heads}) must divide dim ({dim})")
        self.window = window
        self.num_queries = num_queries
        self.rate_divisor = window / num_queries
        self.queries = nn.Parameter(torch.randn(num_queries, dim) * 0.02)
        self.frame_norm = nn.LayerNorm(in_dim)
        self.layers = nn.ModuleList(
            QFormerLayer(dim, in_dim, num_heads, num_queries) for _ in range(num_layers)
        )
        self.out_norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, out_dim)

    @staticmethod
    def count(lengths: torch.Tensor, window: int, num_queries: int) -> torch.Tensor:
        return ceil_div(lengths, window) * num_queries

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        windows = group_frames(features, lengths, self.window)  # [B, N, window, in_dim]
        batch, num_windows = windows.shape[:2]
        mask = valid_mask(lengths, num_windows * self.window).view(batch, num_windows, self.window)
        # Lengths are prefixes, so a window holds audio iff its first frame does. Skipping the
        # rest saves compute and avoids all-masked attention rows (which softmax turns into NaN).
        keep = mask[..., 0]
        frames, frame_mask = self.frame_norm(windows[keep]), mask[keep]
        queries = self.queries.expand(frames.shape[0], -1, -1)
        for layer in self.layers:
            queries = layer(queries, frames, frame_mask)
        encoded = self.proj(self.out_norm(queries))  # [kept windows, num_queries, out_dim]
        out = encoded.new_zeros(batch, num_windows, self.num_queries, self.out_dim)
        out[keep] = encoded
        return out.flatten(1, 2), self.output_lengths(lengths)
