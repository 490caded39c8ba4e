"""FLOP and byte counts, and the floors they give, computed before anything runs.

Counting conventions of every floor and MFU under bench/:

- a multiply-add is 2 FLOPs; norms, activations, rotary embeddings and softmax are not counted;
- a linear layer costs 2 x weights FLOPs per token forward;
- attention's two matmuls (QK^T, PV) cost 4 x (heads x head_dim) FLOPs per (query, key) pair forward;
  causal attention over T tokens has T(T+1)/2 pairs, bidirectional attention T^2; padding is not counted;
- backward through the frozen LLM computes input gradients only: 1x forward for a linear layer (no weight
  gradients), 2x forward for the attention core (dQ, dK and dV are all input gradients);
- the trained projector costs 3x forward (forward, weight gradients, input gradients);
- bytes are the weights a pass must read once, plus the KV cache a decode step reads; activations are
  not counted, so a byte floor is a lower bound. A time floor is max(FLOPs / peak, bytes / bandwidth).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

import torch
from torch import nn

from lalm.encoders.whisper import conv_frames, mel_frames, split_windows
from lalm.model import LALM

# ------------------------------------------------------------------------------------------------ hardware


@dataclass(frozen=True)
class Hardware:
    name: str
    peak_tflops: float | None
    """Matmul peak, TFLOP/s: dense bf16 from the spec sheet (PEAKS), or given, or measured."""
    hbm_tbs: float | None
    """Memory bandwidth, TB/s: from the spec sheet (PEAKS), or given, or measured."""


#: (substring of torch.cuda.get_device_name, dense bf16 TFLOP/s, HBM TB/s). H100 means the SXM part.
PEAKS = (("H200", 989.0, 4.8), ("H100", 989.0, 3.35), ("A100", 312.0, 2.0))


def hardware(device: torch.device, peak_tflops: float | None, hbm_tbs: float | None) -> Hardware:
    """The device's peaks from PEAKS, each overridden where given; on a CPU, only what is given."""
    name, table_tflops, table_tbs = platform.processor() or platform.machine(), None, None
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, flops, tbs in PEAKS:
            if key in name:
                table_tflops, table_tbs = flops, tbs
                break
    return Hardware(name, peak_tflops or table_tflops, hbm_tbs or table_tbs)


def floor_seconds(flops: float, bytes_read: float, hw: Hardware) -> float | None:
    """max(FLOPs / peak, bytes / bandwidth) over the peaks known; None when neither is."""
    terms = []
    if hw.peak_tflops:
        terms.append(flops / (hw.peak_tflops * 1e12))
    if hw.hbm_tbs:
        terms.append(bytes_read / (hw.hbm_tbs * 1e12))
    return max(terms) if terms else None


# ------------------------------------------------------------------------------------------------ counting


def whisper(model: LALM):
    """The (one) Whisper encoder of a bench model."""
    return next(iter(model.branches.values())).encoder


def linear_weights(module: nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Linear))


def weight_bytes(module: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def llm_forward_flops(llm: nn.Module, seq_lens: list[int], head_positions: int,
                      context: list[int] | None = None) -> tuple[float, float]:
    """(linear layers + LM head, attention core) forward FLOPs of the decoder.

    Without `context`, sequence i is processed whole (causal, seq_lens[i] tokens); with it, its
    seq_lens[i] new tokens each attend to context[i] cached keys plus themselves (a decode step).
    """
    width = llm.config.num_attention_heads * head_dim(llm)
    layers = llm.base_model.layers
    linear = 2 * linear_weights(layers) * sum(seq_lens)
    head = 2 * llm.get_output_embeddings().weight.numel() * head_positions
    if context is None:
        pairs = sum(t * (t + 1) / 2 for t in seq_lens)
    else:
        pairs = sum(t * c + t * (t + 1) / 2 for t, c in zip(seq_lens, context))
    return linear + head, 4 * width * len(layers) * pairs


def projector_flops(model: LALM, frames: int) -> float:
    """Forward FLOPs of the model's projectors emitting `frames` frames."""
    return 2 * sum(linear_weights(b.projector) for b in model.branches.values() if b.projector is not None) * frames


def train_flops(model: LALM, seq_lens: list[int], targets: int, frames: int) -> float:
    """Model FLOPs of a training step (MFU's numerator) over sequences of `seq_lens` real tokens with
    `targets` labelled tokens and `frames` audio frames: 2 x (LLM linear + LM head) + 3 x attention core
    + 3 x projector, in forward FLOPs."""
    linear, attention = llm_forward_flops(model.llm, seq_lens, targets)
    return 2 * linear + 3 * attention + 3 * projector_flops(model, frames)


def first_token_counts(model: LALM, prompt_tokens: int, samples: int, encode: bool) -> dict[str, float]:
    """FLOPs and bytes of a first token for a prompt of `prompt_tokens` tokens holding one clip of `samples`
    samples: the encoder (unless the clip comes encoded: `encode` False), the projector, and the LLM's
    prefill with one LM head row. {"encoder_flops", "flops", "bytes"}."""
    encoder = whisper(model)
    enc = encoder_flops(encoder, encoder_window_frames(encoder, [samples]) if encode else [])
    linear, attention = llm_forward_flops(model.llm, [prompt_tokens], 1)
    frames = sum(model.processor.audio_positions(samples).values())
    read = (weight_bytes(encoder) * encode + sum(weight_bytes(b.projector) for b in model.branches.values() if b.projector is not None)
            + llm_read_bytes(model.llm))
    flops = enc + projector_flops(model, frames) + linear + attention
    return {"encoder_flops": enc, "flops": flops, "bytes": read}


def decode_step_counts(llm: nn.Module, contexts: list[float]) -> tuple[float, float]:
    """(FLOPs, bytes) of one decode step for a batch of rows with `contexts` cached tokens each."""
    linear, attention = llm_forward_flops(llm, [1] * len(contexts), len(contexts), contexts)
    return linear + attention, llm_read_bytes(llm) + kv_bytes_per_token(llm) * sum(contexts)


def llm_read_bytes(llm: nn.Module) -> int:
    """Weights one forward pass reads: all but the input embedding table, of which it reads a few rows."""
    return weight_bytes(llm) - weight_bytes(llm.get_input_embeddings())


def head_dim(llm: nn.Module) -> int:
    cfg = llm.config
    return getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads


def kv_bytes_per_token(llm: nn.Module) -> int:
    """Keys and values of one context token, all layers: what a decode step reads per cached token."""
    cfg = llm.config
    return 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * head_dim(llm) * llm.dtype.itemsize


def encoder_window_frames(encoder: nn.Module, samples: list[int], pad_to_30s: bool = False) -> list[int]:
    """Mel frames of every <=30 s window the Whisper encoder runs for clips of `samples` samples, with its
    padding (silence kept in attention) included; `pad_to_30s` counts stock Whisper's instead."""
    with encoder.padding(pad_to_seconds=30 if pad_to_30s else None):
        return [int(mel_frames(torch.tensor(encoder.attended_samples(n)))) for _, _, n in split_windows(samples)]


def audio_window_frames(samples: list[int]) -> list[int]:
    """Mel frames of the audio itself in every <=30 s window: what any padding is measured against."""
    return [int(mel_frames(torch.tensor(n))) for _, _, n in split_windows(samples)]


def encoder_flops(encoder: nn.Module, window_frames: list[int]) -> float:
    """Forward FLOPs of the Whisper encoder (convolutions, layers, bidirectional attention) on windows of
    `window_frames` mel frames."""
    m = encoder.model
    total = 0.0
    for frames in window_frames:
        steps = int(conv_frames(torch.tensor(frames)))
        total += 2 * frames * m.conv1.weight.numel() + 2 * steps * m.conv2.weight.numel()
        total += 2 * linear_weights(m.layers) * steps + 4 * m.config.d_model * len(m.layers) * steps * steps
    return total
