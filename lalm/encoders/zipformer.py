"""Zipformer2 encoders (Auden's TTA and Auden-Voice) in plain PyTorch, for inference.

The model is icefall's Zipformer2 (arXiv 2310.11230) as Auden ships it: a Conv2d + ConvNeXt
front end (`encoder_embed`, 100 Hz fbank -> ~50 Hz) and stacks of layers at several frame rates
(`encoder`), whose outputs are merged and downsampled once more (-> ~25 Hz). Module and parameter
names follow the reference exactly, so Auden/icefall state dicts load with strict=True. The
reference's training machinery (balancers, whiteners, scheduled dropout and layer skipping,
bypass clamping) is the identity at eval time and is left out; SwooshL/SwooshR are plain torch.

Padding: the reference's valid outputs for a clip change slightly when it shares a batch with
longer clips (the ConvNeXt and the stride-2 downsamplers see the padding). Here each clip's
valid outputs equal those of the reference run on that clip alone: front-end frames past a
clip's end are zeroed before the ConvNeXt (as its own zero padding would be), and each
downsampler repeats a clip's last valid frame into its padding (as the reference does at the
end of a lone clip). Attention ignores padded keys and the convolution modules zero padded
frames, as in the reference.

`causal=True` checkpoints (chunk-causal convolutions) load too and run in full-context mode,
the reference's `chunk_size=-1`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lalm.encoders import ENCODERS
from lalm.encoders.base import AudioEncoder, weights_name
from lalm.encoders.fbank import kaldi_fbank_batch, num_frames
from lalm.paths import resolve_path

# Where Auden nests the encoder's fields in a composite model's config.json, with the name of
# the module that holds the encoder's weights.
NESTED_CONFIG_KEYS = ("audio_encoder_config", "speech_encoder_config", "encoder_config")
WEIGHT_FILES = ("model.safetensors", "pretrained.safetensors", "model.pt", "pretrained.pt")
# Every Zipformer state dict has this key; whatever precedes it is a wrapper's prefix.
ANCHOR_KEY = "encoder_embed.conv.0.weight"
PER_STACK_FIELDS = ("num_encoder_layers", "encoder_dim", "feedforward_dim", "num_heads", "query_head_dim",
                    "value_head_dim", "pos_head_dim", "cnn_module_kernel")
MIN_FBANK_FRAMES = 9  # the front end needs 7 frames of context to emit its first frame


@dataclass(frozen=True)
class ZipformerConfig:
    """The Zipformer fields of an Auden config.json (defaults are Auden's `ZipformerConfig`).

    Per-stack fields hold one value per entry of `downsampling_factor`; a single value is
    broadcast to every stack, as the reference does.
    """

    feature_dim: int = 80
    output_downsampling_factor: int = 2
    downsampling_factor: tuple[int, ...] = (1, 2, 4, 8, 4, 2)
    num_encoder_layers: tuple[int, ...] = (2, 2, 3, 4, 3, 2)
    encoder_dim: tuple[int, ...] = (192, 256, 384, 512, 384, 256)
    feedforward_dim: tuple[int, ...] = (576, 768, 1152, 1536, 1152, 768)
    num_heads: tuple[int, ...] = (4, 4, 4, 8, 4, 4)
    query_head_dim: tuple[int, ...] = (32,)
    value_head_dim: tuple[int, ...] = (12,)
    pos_head_dim: tuple[int, ...] = (4,)
    pos_dim: int = 48
    cnn_module_kernel: tuple[int, ...] = (31, 31, 15, 15, 15, 31)
    causal: bool = False

    def __post_init__(self):
        stacks = len(self.downsampling_factor)
        for name in PER_STACK_FIELDS:
            values = getattr(self, name)
            if len(values) == 1:
                object.__setattr__(self, name, values * stacks)
            elif len(values) != stacks:
                raise ValueError(f"{name} has {len(values)} values for {stacks} stacks")

    @classmethod
    def from_dict(cls, fields: dict) -> ZipformerConfig:
        """Read Auden/icefall values (ints, lists, or icefall's comma strings such as "2,2,3").

        Training-only fields (dropout, warmup_batches, encoder_unmasked_dim, chunk_size,
        left_context_frames, ...) are ignored.
        """
        known = {name: fields[name] for name in cls.__dataclass_fields__ if name in fields}
        for name in (*PER_STACK_FIELDS, "downsampling_factor"):
            if name in known:
                known[name] = _int_tuple(known[name])
        return cls(**known)


def _int_tuple(value: int | str | list | tuple) -> tuple[int, ...]:
    if isinstance(value, str):
        return tuple(int(v) for v in value.split(","))
    if isinstance(value, int):
        return (value,)
    return tuple(int(v) for v in value)


def swoosh_l(x: torch.Tensor) -> torch.Tensor:
    return torch.logaddexp(x.new_zeros(()), x - 4.0) - 0.08 * x - 0.035


def swoosh_r(x: torch.Tensor) -> torch.Tensor:
    return torch.logaddexp(x.new_zeros(()), x - 1.0) - 0.08 * x - 0.313261687


class SwooshR(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swoosh_r(x)


def padding_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """[B, steps] bool, True past each clip's end."""
    return torch.arange(steps, device=lengths.device)[None, :] >= lengths[:, None]


class BiasNorm(nn.Module):
    """LayerNorm's cheaper cousin: scale by the RMS of (x - bias), learned log-scale, no shift."""

    def __init__(self, dim: int):
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(1.0))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scales = torch.mean((x - self.bias) ** 2, dim=-1, keepdim=True) ** -0.5 * self.log_scale.exp()
        return x * scales


class ConvNeXt(nn.Module):
    """Depthwise 7x7 conv, pointwise expansion, SwooshL, pointwise projection, residual."""

    def __init__(self, channels: int, hidden_ratio: int = 3, kernel_size: int = 7):
        super().__init__()
        hidden = channels * hidden_ratio
        self.depthwise_conv = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2,
                                        groups=channels)
        self.pointwise_conv1 = nn.Conv2d(channels, hidden, 1)
        self.pointwise_conv2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pointwise_conv2(swoosh_l(self.pointwise_conv1(self.depthwise_conv(x))))


class Conv2dSubsampling(nn.Module):
    """Fbank [B, T, F] -> [B, (T - 7) // 2, out_channels]: three convs, a ConvNeXt, a projection."""

    def __init__(self, in_channels: int, out_channels: int, layer1: int = 8, layer2: int = 32,
                 layer3: int = 128):
        super().__init__()
        # Indices follow the reference's Sequential; its ScaleGrad/Balancer slots (1, 2, 5, 8)
        # change only gradients, so they are identities here.
        self.conv = nn.Sequential(
            nn.Conv2d(1, layer1, 3, padding=(0, 1)), nn.Identity(), nn.Identity(), SwooshR(),
            nn.Conv2d(layer1, layer2, 3, stride=2), nn.Identity(), SwooshR(),
            nn.Conv2d(layer2, layer3, 3, stride=(1, 2)), nn.Identity(), SwooshR(),
        )
        self.convnext = ConvNeXt(layer3)
        out_width = ((in_channels - 1) // 2 - 1) // 2
        self.out = nn.Linear(out_width * layer3, out_channels)
        self.out_norm = BiasNorm(out_channels)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv(x.unsqueeze(1))  # [B, C, T', F']
        lengths = ((lengths - 7) // 2).clamp(min=0)
        # A clip's valid frames never see its padding in the convs above, but the ConvNeXt's
        # 7-frame window would: give it the zeros a lone clip's conv padding supplies.
        x = x.masked_fill(padding_mask(lengths, x.shape[2])[:, None, :, None], 0.0)
        x = self.convnext(x)
        b, c, t, f = x.shape
        x = self.out(x.transpose(1, 2).reshape(b, t, c * f))
        return self.out_norm(x), lengths


def rel_positional_encoding(steps: int, dim: int, device: torch.device) -> torch.Tensor:
    """Zipformer's compact relative encoding of offsets -(steps-1)..steps-1 -> [2 steps - 1, dim].

    Offsets are log-compressed beyond ~sqrt(dim), mapped through atan to a finite interval and
    Fourier-expanded, so near offsets are distinct and far ones blur together; the last column
    is a constant 1 that acts as a bias.
    """
    x = torch.arange(-(steps - 1), steps, device=device).to(torch.float32).unsqueeze(1)
    freqs = 1 + torch.arange(dim // 2, device=device)
    compression = dim**0.5
    x_compressed = compression * x.sign() * ((x.abs() + compression).log() - math.log(compression))
    x_atan = (x_compressed / (dim / (2.0 * math.pi))).atan()
    pe = torch.zeros(x.shape[0], dim, device=device)
    pe[:, 0::2] = (x_atan * freqs).cos()
    pe[:, 1::2] = (x_atan * freqs).sin()
    pe[:, -1] = 1.0
    return pe


class RelPositionMultiheadAttentionWeights(nn.Module):
    """Attention weights [B, H, T, T] from content (q.k) plus relative-position (p.pos) scores.

    There is no 1/sqrt(d) factor: the trained projections absorb it.
    """

    def __init__(self, dim: int, pos_dim: int, num_heads: int, query_head_dim: int, pos_head_dim: int):
        super().__init__()
        self.num_heads, self.query_head_dim, self.pos_head_dim = num_heads, query_head_dim, pos_head_dim
        self.in_proj = nn.Linear(dim, (2 * query_head_dim + pos_head_dim) * num_heads)
        self.linear_pos = nn.Linear(pos_dim, num_heads * pos_head_dim, bias=False)

    def forward(self, x: torch.Tensor, pos_emb: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        h, dq, dp = self.num_heads, self.query_head_dim, self.pos_head_dim
        q, k, p = self.in_proj(x).split([h * dq, h * dq, h * dp], dim=-1)
        q = q.reshape(b, t, h, dq).transpose(1, 2)
        k = k.reshape(b, t, h, dq).permute(0, 2, 3, 1)
        p = p.reshape(b, t, h, dp).transpose(1, 2)
        scores = torch.matmul(q, k)
        rel = self.linear_pos(pos_emb).reshape(2 * t - 1, h, dp).permute(1, 2, 0)  # [H, dp, 2T-1]
        pos_scores = torch.matmul(p, rel).contiguous()  # [B, H, T, 2T-1]; column n is offset n-(T-1)
        # View row i from column (T-1) - i on, so entry (i, j) holds offset j - i (key minus query).
        s = pos_scores.stride()
        pos_scores = pos_scores.as_strided((b, h, t, t), (s[0], s[1], s[2] - s[3], s[3]),
                                           storage_offset=pos_scores.storage_offset() + s[3] * (t - 1))
        scores = (scores + pos_scores).masked_fill(pad[:, None, None, :], -1000.0)
        return scores.softmax(dim=-1)


class SelfAttention(nn.Module):
    """Values mixed by precomputed attention weights."""

    def __init__(self, dim: int, num_heads: int, value_head_dim: int):
        super().__init__()
        self.in_proj = nn.Linear(dim, num_heads * value_head_dim)
        self.out_proj = nn.Linear(num_heads * value_head_dim, dim)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        b, h, t, _ = weights.shape
        v = self.in_proj(x).reshape(b, t, h, -1).transpose(1, 2)
        return self.out_proj(torch.matmul(weights, v).transpose(1, 2).reshape(b, t, -1))


class NonlinAttention(nn.Module):
    """A gated, attention-mixed branch: (tanh(s) * x) mixed by the first head's weights, gated by y."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.in_proj = nn.Linear(dim, 3 * hidden)
        self.out_proj = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        s, x, y = self.in_proj(x).chunk(3, dim=-1)
        x = torch.matmul(weights, x * torch.tanh(s))
        return self.out_proj(x * y)


class FeedforwardModule(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.in_proj = nn.Linear(dim, hidden)
        self.out_proj = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_proj(swoosh_l(self.in_proj(x)))


class ChunkCausalDepthwiseConv1d(nn.Module):
    """Causal checkpoints' depthwise conv, run with one chunk per clip (full context).

    The reference adds a causal half-kernel conv to a full-kernel conv whose output is scaled by
    learned corrections near the chunk's two edges. With the whole clip as the chunk, the right
    edge is the clip's end, so the scale is placed per clip from its own length.
    """

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size
        self.causal_conv = nn.Conv1d(channels, channels, (kernel_size + 1) // 2, groups=channels)
        self.chunkwise_conv = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2,
                                        groups=channels)
        self.chunkwise_conv_scale = nn.Parameter(torch.zeros(2, channels, kernel_size))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        k, steps = self.kernel_size, x.shape[-1]
        causal = self.causal_conv(F.pad(x, (k // 2, 0)))
        t = torch.arange(steps, device=x.device)
        # Left-edge corrections apply to the first k frames, right-edge ones to a clip's last k.
        left = self.chunkwise_conv_scale[0][:, t.clamp(max=k - 1)] * (t < k)  # [C, T]
        right_index = t[None, :] - lengths[:, None] + k  # [B, T]
        right_valid = (right_index >= 0) & (right_index < k)
        right = self.chunkwise_conv_scale[1][:, right_index.clamp(0, k - 1)].permute(1, 0, 2)
        scale = 1.0 + (left + right * right_valid[:, None, :])
        return self.chunkwise_conv(x) * scale + causal


class ConvolutionModule(nn.Module):
    """GLU, depthwise conv over time (padding zeroed first), SwooshR, projection."""

    def __init__(self, dim: int, kernel_size: int, causal: bool):
        super().__init__()
        self.in_proj = nn.Linear(dim, 2 * dim)
        self.depthwise_conv: nn.Module = (
            ChunkCausalDepthwiseConv1d(dim, kernel_size) if causal
            else nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim))
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, pad: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x, gate = self.in_proj(x).chunk(2, dim=-1)
        x = (x * torch.sigmoid(gate)).masked_fill(pad[..., None], 0.0).transpose(1, 2)
        if isinstance(self.depthwise_conv, ChunkCausalDepthwiseConv1d):
            x = self.depthwise_conv(x, lengths)
        else:
            x = self.depthwise_conv(x)
        return self.out_proj(swoosh_r(x.transpose(1, 2)))


class BypassModule(nn.Module):
    """Learned per-channel interpolation between a block's input and its output."""

    def __init__(self, dim: int):
        super().__init__()
        self.bypass_scale = nn.Parameter(torch.full((dim,), 0.5))

    def forward(self, x_orig: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x_orig + (x - x_orig) * self.bypass_scale


class Zipformer2EncoderLayer(nn.Module):
    """One layer: ff, nonlinear attention, attention, conv, ff, mid-bypass, attention, conv, ff, norm.

    Both attention blocks and the nonlinear attention share one set of attention weights.
    """

    def __init__(self, cfg: ZipformerConfig, stack: int):
        super().__init__()
        dim, ff = cfg.encoder_dim[stack], cfg.feedforward_dim[stack]
        heads = cfg.num_heads[stack]
        self.bypass = BypassModule(dim)
        self.bypass_mid = BypassModule(dim)
        self.self_attn_weights = RelPositionMultiheadAttentionWeights(
            dim, cfg.pos_dim, heads, cfg.query_head_dim[stack], cfg.pos_head_dim[stack])
        self.self_attn1 = SelfAttention(dim, heads, cfg.value_head_dim[stack])
        self.self_attn2 = SelfAttention(dim, heads, cfg.value_head_dim[stack])
        self.feed_forward1 = FeedforwardModule(dim, ff * 3 // 4)
        self.feed_forward2 = FeedforwardModule(dim, ff)
        self.feed_forward3 = FeedforwardModule(dim, ff * 5 // 4)
        self.nonlin_attention = NonlinAttention(dim, 3 * dim // 4)
        self.conv_module1 = ConvolutionModule(dim, cfg.cnn_module_kernel[stack], cfg.causal)
        self.conv_module2 = ConvolutionModule(dim, cfg.cnn_module_kernel[stack], cfg.causal)
        # Unused by the reference's forward as well, but its checkpoints carry it.
        self.bypass_scale = nn.Parameter(torch.full((dim,), 0.5))
        self.norm = BiasNorm(dim)

    def forward(self, x: torch.Tensor, pos_emb: torch.Tensor, pad: torch.Tensor,
                lengths: torch.Tensor) -> torch.Tensor:
        x_orig = x
        weights = self.self_attn_weights(x, pos_emb, pad)
        x = x + self.feed_forward1(x)
        x = x + self.nonlin_attention(x, weights[:, 0])
        x = x + self.self_attn1(x, weights)
        x = x + self.conv_module1(x, pad, lengths)
        x = x + self.feed_forward2(x)
        x = self.bypass_mid(x_orig, x)
        x = x + self.self_attn2(x, weights)
        x = x + self.conv_module2(x, pad, lengths)
        x = x + self.feed_forward3(x)
        return self.bypass(x_orig, self.norm(x))


class Zipformer2Encoder(nn.Module):
    """A stack of layers at one frame rate."""

    def __init__(self, cfg: ZipformerConfig, stack: int):
        super().__init__()
        self.pos_dim = cfg.pos_dim
        self.layers = nn.ModuleList(Zipformer2EncoderLayer(cfg, stack)
                                    for _ in range(cfg.num_encoder_layers[stack]))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        pos_emb = rel_positional_encoding(x.shape[1], self.pos_dim, x.device).to(x.dtype)
        pad = padding_mask(lengths, x.shape[1])
        for layer in self.layers:
            x = layer(x, pos_emb, pad, lengths)
        return x


class SimpleDownsample(nn.Module):
    """Downsample time by `factor` with a learned softmax-weighted average of each group of frames.

    The reference completes the last group by repeating the sequence's last frame; here each
    clip repeats its own last valid frame, so a padded clip gets what it would get alone.
    """

    def __init__(self, factor: int):
        super().__init__()
        self.factor = factor
        self.bias = nn.Parameter(torch.zeros(factor))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        groups = -(-t // self.factor)
        source = torch.arange(groups * self.factor, device=x.device)[None, :]
        source = torch.minimum(source, (lengths - 1).clamp(min=0)[:, None])
        x = x.gather(1, source[..., None].expand(-1, -1, c))
        x = x.reshape(b, groups, self.factor, c)
        return (x * self.bias.softmax(dim=0)[:, None]).sum(dim=2)


class DownsampledZipformer2Encoder(nn.Module):
    """A stack run at 1/`factor` of the input rate, upsampled by repetition and bypass-combined."""

    def __init__(self, encoder: Zipformer2Encoder, dim: int, factor: int):
        super().__init__()
        self.factor = factor
        self.downsample = SimpleDownsample(factor)
        self.encoder = encoder
        self.out_combiner = BypassModule(dim)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        y = self.downsample(x, lengths)
        y = self.encoder(y, -(-lengths // self.factor))
        y = y.repeat_interleave(self.factor, dim=1)[:, : x.shape[1]]
        return self.out_combiner(x, y)


class Zipformer2(nn.Module):
    """The stacks, their merged output, and the final downsampling."""

    def __init__(self, cfg: ZipformerConfig):
        super().__init__()
        self.encoder_dim = cfg.encoder_dim
        stacks: list[nn.Module] = []
        for i, factor in enumerate(cfg.downsampling_factor):
            stack = Zipformer2Encoder(cfg, i)
            if factor != 1:
                stack = DownsampledZipformer2Encoder(stack, cfg.encoder_dim[i], factor)
            stacks.append(stack)
        self.encoders = nn.ModuleList(stacks)
        self.downsample_output = SimpleDownsample(cfg.output_downsampling_factor)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = []
        for dim, module in zip(self.encoder_dim, self.encoders):
            # Each stack takes the previous output cut or zero-padded to its own width.
            x = x[..., :dim] if dim <= x.shape[-1] else F.pad(x, (0, dim - x.shape[-1]))
            x = module(x, lengths)
            outputs.append(x)
        x = self._full_dim_output(outputs)
        factor = self.downsample_output.factor
        return self.downsample_output(x, lengths), -(-lengths // factor)

    def _full_dim_output(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        """The widest output: each channel from the latest stack that has it."""
        pieces, width = [outputs[-1]], self.encoder_dim[-1]
        for dim, output in zip(reversed(self.encoder_dim[:-1]), reversed(outputs[:-1])):
            if dim > width:
                pieces.append(output[..., width:dim])
                width = dim
        return torch.cat(pieces, dim=-1)


@ENCODERS.register("zipformer")
class ZipformerEncoder(AudioEncoder):
    """A frozen Auden/icefall Zipformer2 at 25 Hz that computes its own fbank.

    Args:
        path: Auden checkpoint directory or Hugging Face hub id (e.g. `AudenAI/auden-encoder-voice`),
            holding config.json and model/pretrained .safetensors/.pt weights.
        random_config: Zipformer fields (see `ZipformerConfig`) for a randomly initialised encoder (tests).
        seed: seed of the random initialisation.
    """

    frame_rate = 25.0  # 100 Hz fbank / 2 (front end) / 2 (output_downsampling_factor)

    def __init__(self, path: str | None = None, random_config: dict | None = None, seed: int = 0):
        super().__init__()
        config = random_config
        if (path is None) == (config is None):
            raise ValueError("give exactly one of `path` (Auden checkpoint) or `random_config` (random init)")
        state = None
        if path is not None:
            config, state = load_auden_checkpoint(path)
        cfg = ZipformerConfig.from_dict(config)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.encoder_embed = Conv2dSubsampling(cfg.feature_dim, cfg.encoder_dim[0])
            self.encoder = Zipformer2(cfg)
        if state is not None:
            self.load_state_dict(state, strict=True)
        self.eval().requires_grad_(False)
        self.config = cfg
        self.dim = max(cfg.encoder_dim)
        self.frame_rate = 50.0 / cfg.output_downsampling_factor
        self.identity = f"zipformer:{weights_name(path, random_config, seed)}"

    @staticmethod
    def count(num_samples: torch.Tensor, factor: int) -> torch.Tensor:
        front = ((num_frames(num_samples) - 7) // 2).clamp(min=0)
        return -(-front // factor)

    @classmethod
    def length_params(cls, path: str | None, random_config: dict | None) -> dict:
        fields = random_config if random_config is not None else read_auden_config(path)
        return {"factor": ZipformerConfig.from_dict(fields).output_downsampling_factor}

    def own_length_params(self) -> dict:
        return {"factor": self.config.output_downsampling_factor}

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, frames = kaldi_fbank_batch(waveforms, lengths, self.config.feature_dim)
        return self.encode_features(features, frames)

    def encode_features(self, features: torch.Tensor,
                        frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fbank [B, T, feature_dim] with valid frames [B] -> (features [B, T', D], lengths [B]).

        Outputs past a clip's length are zeroed.
        """
        dtype = self.encoder_embed.out.weight.dtype
        features = F.pad(features, (0, 0, 0, max(0, MIN_FBANK_FRAMES - features.shape[1])))
        x, lengths = self.encoder_embed(features.to(dtype), frames.to(features.device))
        x, lengths = self.encoder(x, lengths)
        return x.masked_fill(padding_mask(lengths, x.shape[1])[..., None], 0.0), lengths


def load_auden_checkpoint(path: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """(Zipformer config fields, encoder state dict) from an Auden checkpoint dir, weight file or hub id.

    A composite model (TTA, AZeroS, ...) nests the encoder's fields under one of
    NESTED_CONFIG_KEYS and prefixes its weights with that module's name; DDP adds `module.`.
    """
    path = resolve_path(path)
    if os.path.isdir(path):
        present = [os.path.join(path, n) for n in WEIGHT_FILES if os.path.isfile(os.path.join(path, n))]
        if not present:
            raise FileNotFoundError(f"{path} has none of {', '.join(WEIGHT_FILES)}")
        weights, config_file = present[0], os.path.join(path, "config.json")
    elif os.path.isfile(path):
        weights, config_file = path, os.path.join(os.path.dirname(path), "config.json")
    else:
        config_file, weights = _download(path)
    fields, module = _encoder_fields(config_file)
    return fields, _encoder_state(_read_weights(weights), module)


def read_auden_config(path: str) -> dict:
    """The Zipformer config fields of an Auden checkpoint (dir, weight file or hub id), without its weights."""
    path = resolve_path(path)
    if os.path.isdir(path) or os.path.isfile(path):
        config_file = os.path.join(path if os.path.isdir(path) else os.path.dirname(path), "config.json")
    else:
        from huggingface_hub import hf_hub_download

        config_file = hf_hub_download(path, "config.json")
    return _encoder_fields(config_file)[0]


def _encoder_fields(config_file: str) -> tuple[dict, str | None]:
    """(encoder fields, the composite model's encoder module name or None) from a config.json."""
    with open(config_file) as f:
        raw = json.load(f)
    for key in NESTED_CONFIG_KEYS:
        if isinstance(raw.get(key), dict):
            return raw[key], key.removesuffix("_config")
    return raw, None


def _download(repo_id: str) -> tuple[str, str]:
    """config.json and the first of WEIGHT_FILES in a hub repo, downloaded to the HF cache."""
    from huggingface_hub import hf_hub_download, list_repo_files

    present = set(list_repo_files(repo_id))
    name = next((n for n in WEIGHT_FILES if n in present), None)
    if name is None:
        raise FileNotFoundError(f"hub repo {repo_id} has none of {', '.join(WEIGHT_FILES)}")
    return hf_hub_download(repo_id, "config.json"), hf_hub_download(repo_id, name)


def _read_weights(file: str) -> dict[str, torch.Tensor]:
    if file.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(file)
    state = torch.load(file, map_location="cpu", weights_only=True)
    # Training checkpoints wrap the weights with optimizer state and counters.
    for key in ("state_dict", "model"):
        if isinstance(state.get(key), dict):
            return state[key]
    return state


def _encoder_state(state: dict[str, torch.Tensor], module: str | None) -> dict[str, torch.Tensor]:
    """The encoder's weights under their own names, whatever wrapper prefix they were saved with."""
    prefixes = sorted({k[: -len(ANCHOR_KEY)] for k in state if k.endswith(ANCHOR_KEY)})
    if not prefixes:
        raise ValueError(f"no Zipformer weights: no key ends with {ANCHOR_KEY!r}")
    if len(prefixes) > 1:
        wanted = [p for p in prefixes if p.removeprefix("module.") == f"{module}."]
        if len(wanted) != 1:
            raise ValueError(f"several Zipformers in the checkpoint ({prefixes}); config names {module!r}")
        prefixes = wanted
    prefix = prefixes[0]
    keep = (prefix + "encoder_embed.", prefix + "encoder.")
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(keep)}
