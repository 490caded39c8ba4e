"""The projector interface: frozen-encoder features in, LLM-width embeddings out."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import torch
from torch import nn


class Projector(nn.Module):
    """Base class for projectors.

    A projector maps encoder features [B, T, in_dim] with valid lengths [B] to LLM embeddings
    [B, T', out_dim] with valid lengths [B]. T' must be computable from T and the config's options
    alone (`count`, from the options named in `length_options`), because the processor reserves
    exactly that many prompt positions before the audio is encoded, and is built from the config
    without the model (`length_rule`). A content-dependent projector (CTC compression) says so in
    `content_dependent`; its prompts are built after projection. `rate_divisor` is how many input
    frames make one output frame on average, so output rate = encoder frame rate / rate_divisor.
    """

    rate_divisor: float
    #: Constructor options that decide output lengths; the instance keeps each as an attribute.
    length_options: tuple[str, ...] = ()

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = out_dim

    @staticmethod
    def count(lengths: torch.Tensor, **length_options: int) -> torch.Tensor:
        """Output frames for `lengths` input frames: the one length rule of a projector class."""
        raise NotImplementedError

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.count(lengths, **{name: getattr(self, name) for name in self.length_options})

    @classmethod
    def options_with_defaults(cls, options: dict) -> dict:
        """The config's options completed with the constructor's defaults."""
        params = list(inspect.signature(cls.__init__).parameters.values())[3:]  # self, in_dim, out_dim
        return {**{p.name: p.default for p in params if p.default is not inspect.Parameter.empty}, **options}

    @classmethod
    def length_rule(cls, options: dict) -> Callable[[torch.Tensor], torch.Tensor]:
        """`output_lengths` from the config's options alone, without building the projector."""
        full = cls.options_with_defaults(options)
        return functools.partial(cls.count, **{name: full[name] for name in cls.length_options})

    @classmethod
    def content_dependent(cls, options: dict) -> bool:
        """Whether the emitted length depends on what was said (then `count` is an upper bound)."""
        return False

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class Standardize(nn.Module):
    """Per-dimension standardisation by the running mean and variance of every vector seen in training.

    Unlike BatchNorm it always normalises by the accumulated statistics, never by the batch's own, so a
    batch of one clip trains and a clip's output does not depend on its batch. The statistics are an
    exact running average over all training vectors so far (Chan's pooled update), updated before use,
    carry no gradient, and are saved with the projector (persistent buffers); in eval mode they stay put.
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("var", torch.zeros(dim, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.update(x.detach().reshape(-1, x.shape[-1]))
        if self.count < 2:  # no spread known yet (fresh, or one vector seen): centre only
            return x - self.mean.to(x.dtype)
        return (x - self.mean.to(x.dtype)) * torch.rsqrt(self.var.to(x.dtype) + self.eps)

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        n = x.shape[0]
        if n == 0:
            return
        x = x.double()
        mean, var = x.mean(0), x.var(0, unbiased=False)
        if self.count == 0:  # the first batch sets the statistics
            self.mean.copy_(mean)
            self.var.copy_(var)
        else:
            total = self.count + n
            delta = mean - self.mean
            self.var.copy_((self.var * self.count + var * n + delta ** 2 * self.count * n / total) / total)
            self.mean.add_(delta * n / total)
        self.count.add_(n)


def check_positive(**options: int) -> None:
    """Fail at build time, naming the option, rather than with a shape error deep in forward."""
    for name, value in options.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def ceil_div(lengths: torch.Tensor, k: int) -> torch.Tensor:
    """Groups needed to cover `lengths` frames: a partial last group still counts, so no audio is lost."""
    return (lengths + k - 1) // k


def valid_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """[B, max_len] bool, True at a clip's real frames: lengths are prefixes, padding is the tail."""
    return torch.arange(max_len, device=lengths.device) < lengths[:, None]


def zero_padding(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero x [B, T, ...] past each clip's length, so padding can never carry information downstream."""
    mask = valid_mask(lengths, x.shape[1]).view(*x.shape[:2], *([1] * (x.dim() - 2)))
    return x.masked_fill(~mask, 0)


def label_starts(path: list[int]) -> list[int]:
    """The frames of a CTC best path at which its labels begin (a non-blank that does not repeat the last)."""
    return [i for i, t in enumerate(path) if t != 0 and (i == 0 or t != path[i - 1])]


def ctc_collapse(path: list[int]) -> list[int]:
    """A CTC best path's labels: repeats merged, then blanks (label 0) dropped."""
    return [path[i] for i in label_starts(path)]


def group_frames(features: torch.Tensor, lengths: torch.Tensor, k: int) -> torch.Tensor:
    """features [B, T, D] -> [B, ceil(T/k), k, D], with padded frames and the tail zeroed.

    Padded frames are zeroed before grouping so a clip's partial last group sees zeros, exactly
    as it would alone in a batch of one: its output cannot depend on its batch-mates.
    """
    batch, frames, dim = features.shape
    groups = -(-frames // k)
    x = zero_padding(features, lengths)
    x = nn.functional.pad(x, (0, 0, 0, groups * k - frames))
    return x.view(batch, groups, k, dim)


class StackingProjector(Projector):
    """A projector that turns each group of k consecutive frames into one output frame.

    Subclasses only implement `project`; grouping, tail padding, lengths and output masking live
    here so every stacking projector handles padding the same, tested way.
    """

    length_options = ("k",)

    def __init__(self, in_dim: int, out_dim: int, k: int):
        check_positive(k=k)
        super().__init__(in_dim, out_dim)
        self.k = k
        self.rate_divisor = k

    def project(self, groups: torch.Tensor) -> torch.Tensor:
        """groups [B, N, k, in_dim] -> [B, N, out_dim]."""
        raise NotImplementedError

    @staticmethod
    def count(lengths: torch.Tensor, k: int) -> torch.Tensor:
        return ceil_div(lengths, k)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out_lengths = self.output_lengths(lengths)
        out = self.project(group_frames(features, lengths, self.k))
        return zero_padding(out, out_lengths), out_lengths
