"""The floors, counted before anything runs, and what the floor-and-measure benchmarks share.

    python bench/shapes.py                      # each shape's counts; the 7b floors on the GPUs of PEAKS
    python bench/shapes.py --measure-peaks      # also this device's measured matmul and read rates

Shared by bench/train_step.py, bench/decode_floor.py and bench/inference_latency.py: model shapes, the
hardware table, FLOP and byte counts, timing, result files.

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

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lalm.config import ModelConfig, load_config
from lalm.encoders.whisper import conv_frames, mel_frames, split_windows
from lalm.generation import resolve_device
from lalm.model import LALM
from lalm.paths import kit_config
from lalm.processor import IGNORE

DEPLOYED_CONFIG = kit_config("whisper_large_v3_qwen2_5_7b.yaml")
QUESTION = [{"role": "user", "content": [{"type": "audio"}]}]  # a spoken question: one audio turn, no text
QUESTION_SECONDS = 10.0

# Whisper-large-v3's encoder and Qwen2.5-7B-Instruct, as in configs/whisper_large_v3_qwen2_5_7b.yaml.
WHISPER_LARGE_V3 = {"d_model": 1280, "encoder_layers": 32, "encoder_attention_heads": 20,
                    "encoder_ffn_dim": 5120, "num_mel_bins": 128, "max_source_positions": 1500}
QWEN2_5_7B = {"model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
              "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
              "max_position_embeddings": 32768}


@dataclass(frozen=True)
class Shape:
    encoder: dict
    llm: dict


#: `small` keeps the 7B pair's proportions where they set the ratios (`python bench/shapes.py` counts
#: them): per 8 s clip with a 100-token target, the encoder's 30 s forward is 0.41x the LLM's training FLOPs
#: (7b: 0.45x), the LM head ~5% of them (7b: 4%), GQA 4:1. `tiny` runs in seconds for quick checks.
SHAPES = {
    "tiny": Shape(
        {"d_model": 128, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 512,
         "num_mel_bins": 80, "max_source_positions": 1500},
        {"model_type": "qwen2", "hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 5,
         "num_attention_heads": 4, "num_key_value_heads": 1, "vocab_size": 2048,
         "max_position_embeddings": 4096}),
    "small": Shape(
        {"d_model": 256, "encoder_layers": 4, "encoder_attention_heads": 4, "encoder_ffn_dim": 1024,
         "num_mel_bins": 128, "max_source_positions": 1500},
        {"model_type": "qwen2", "hidden_size": 768, "intermediate_size": 2560, "num_hidden_layers": 8,
         "num_attention_heads": 12, "num_key_value_heads": 3, "vocab_size": 8192,
         "max_position_embeddings": 4096}),
    "7b": Shape(WHISPER_LARGE_V3, QWEN2_5_7B),
}


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


def measure_peaks(device: torch.device) -> tuple[float, float]:
    """This device's own (matmul TFLOP/s, read TB/s): the best of 5 square matmuls in the bench dtype
    (bf16 on a GPU, float32 on a CPU) and of 5 sums over a tensor far larger than the caches."""
    gpu = device.type == "cuda"
    n = 8192 if gpu else 2048
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16 if gpu else torch.float32)
    big = torch.randn(2**29 if gpu else 2**26, device=device)
    best = race({"matmul": lambda: a @ a, "read": big.sum}, device, 5)
    return 2 * n**3 / best["matmul"] / 1e12, big.numel() * big.element_size() / best["read"] / 1e12


def floor_seconds(flops: float, bytes_read: float, hw: Hardware) -> float | None:
    """max(FLOPs / peak, bytes / bandwidth) over the peaks known; None when neither is."""
    terms = []
    if hw.peak_tflops:
        terms.append(flops / (hw.peak_tflops * 1e12))
    if hw.hbm_tbs:
        terms.append(bytes_read / (hw.hbm_tbs * 1e12))
    return max(terms) if terms else None


# ------------------------------------------------------------------------------------------------ models


def model_config(shape: str, bf16: bool) -> ModelConfig:
    """The deployed config (projector, prompt layout) with random weights of `shape`."""
    s = SHAPES[shape]
    overrides = {
        "model.branches.0.encoder.path": None, "model.branches.0.encoder.random_config": s.encoder,
        "model.branches.0.projector.options": {"k": 8, "hidden": s.llm["hidden_size"]},
        "model.llm.path": None, "model.llm.random_config": s.llm,
        "model.llm.dtype": "bfloat16" if bf16 else "float32",
    }
    return load_config(DEPLOYED_CONFIG, [f"{k}={json.dumps(v)}" for k, v in overrides.items()])


def build_model(shape: str, device: torch.device, bf16: bool | None = None) -> LALM:
    """Weights are allocated and initialised on `device` itself (no CPU copy of a 7B model); the LLM is
    bf16 on a GPU (or as `bf16` says), float32 elsewhere."""
    with torch.device(device):
        model = LALM(model_config(shape, device.type == "cuda" if bf16 is None else bf16).model)
    return model.to(device)  # a no-op, unless some library made a buffer on the CPU explicitly


def whisper(model: LALM):
    """The (one) Whisper encoder of a bench model."""
    return next(iter(model.branches.values())).encoder


def noise(seconds: float, seed: int) -> torch.Tensor:
    """A clip of 16 kHz noise; the encoder's cost depends on its length only."""
    gen = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(int(seconds * 16000), generator=gen)


def clip_seconds(n: int, seed: int) -> np.ndarray:
    """Utterance lengths as bench.common.synthetic_corpus draws them: gamma (shape 4) with mean 8 s,
    clipped to 2-20 s."""
    return np.clip(np.random.default_rng(seed).gamma(4.0, 8.0 / 4.0, size=n), 2.0, 20.0)


# ------------------------------------------------------------------------------------------------ counting


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
    return 2 * sum(linear_weights(b.projector) for b in model.branches.values()) * frames


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
    read = (weight_bytes(encoder) * encode + sum(weight_bytes(b.projector) for b in model.branches.values())
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


# ------------------------------------------------------------------------------------------------ timing


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clock(device: torch.device) -> float:
    """A wall clock that first waits for the device's queued work."""
    synchronize(device)
    return time.perf_counter()


def race(runs: dict[str, Callable[[], object]], device: torch.device, repeats: int) -> dict[str, float]:
    """Each run's fastest time over `repeats` rounds. Within a round the runs take turns, so a change in
    the load of other jobs on a shared machine hits every run alike, and such load only ever adds time."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            start = clock(device)
            run()
            best[name] = min(best[name], clock(device) - start)
    return best


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gb(device: torch.device) -> float | None:
    """Peak allocated device memory since the last reset; None on a CPU (not tracked)."""
    return torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None


# ------------------------------------------------------------------------------------------------ results


def add_common_args(parser) -> None:
    parser.add_argument("--shape", choices=list(SHAPES), default="small",
                        help="7b: Whisper-large-v3 encoder + Qwen2.5-7B (for a GPU); tiny, small: for a CPU")
    parser.add_argument("--device", default="auto", help="cuda, cpu, or auto (cuda when available)")
    parser.add_argument("--peak-tflops", type=float, help="matmul peak in TFLOP/s, instead of the table's")
    parser.add_argument("--hbm-tbs", type=float, help="memory bandwidth in TB/s, instead of the table's")
    parser.add_argument("--measure-peaks", action="store_true",
                        help="use this device's measured matmul and read rates as peaks (unless given)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=3, help="timings are the fastest of this many rounds")


def start(args) -> tuple[torch.device, Hardware, dict]:
    """Apply --threads, pick the device and its peaks; print the setting and return it for the results."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    hw = hardware(device, args.peak_tflops, args.hbm_tbs)
    if args.measure_peaks:
        flops, tbs = measure_peaks(device)
        hw = Hardware(f"{hw.name} (measured peaks)", args.peak_tflops or flops, args.hbm_tbs or tbs)
    info = {
        "command": " ".join(["python", f"bench/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "device": hw.name, "device_type": device.type, "shape": args.shape, "peak_tflops": hw.peak_tflops,
        "hbm_tbs": hw.hbm_tbs, "torch": torch.__version__, "threads": torch.get_num_threads(),
    }
    print(f"command: {info['command']}")
    print(f"device: {hw.name} ({device.type}), torch {torch.__version__}, {info['threads']} CPU threads, "
          f"peak {fmt(hw.peak_tflops, '.3g')} TFLOP/s, bandwidth {fmt(hw.hbm_tbs, '.3g')} TB/s")
    return device, hw, info


def fmt(value: float | None, spec: str = ".2f", unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(headers) + " |")
    print("|" + " --- |" * len(headers))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def save_results(name: str, payload: dict) -> Path:
    """Write `name`.json under $OUT if set, else ./bench_results/."""
    directory = Path(os.environ.get("OUT") or "bench_results")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"results: {path}")
    return path


# ------------------------------------------------------------------------------------------------ counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python bench/shapes.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=list(SHAPES), default="7b", help="whose floors are listed")
    parser.add_argument("--device", default="auto", help="the device --measure-peaks measures")
    parser.add_argument("--measure-peaks", action="store_true", help="measure its matmul and read rates")
    parser.add_argument("--seconds", type=float, default=8.0, help="clip length of the per-clip counts")
    parser.add_argument("--target-tokens", type=int, default=100, help="target length of the per-clip counts")
    args = parser.parse_args(argv)
    counts, floors = [], []
    for shape in SHAPES:
        model = build_model(shape, torch.device("meta"), bf16=True)  # counts only: nothing is allocated
        llm, encoder = model.llm, whisper(model)
        samples = int(args.seconds * 16000)
        example = model.processor.encode(QUESTION, [samples], "x" * args.target_tokens)
        tokens = len(example.input_ids)
        targets = sum(label != IGNORE for label in example.labels[1:])
        train = train_flops(model, [tokens], targets, sum(model.processor.audio_positions(samples).values()))
        real, padded = (encoder_flops(encoder, encoder_window_frames(encoder, [samples], p)) for p in (False, True))
        counts.append([shape, f"{sum(p.numel() for p in llm.parameters()) / 1e6:,.1f}M",
                       f"{sum(p.numel() for p in encoder.parameters()) / 1e6:,.1f}M",
                       f"{llm_read_bytes(llm) / 1e9:.2f}", f"{kv_bytes_per_token(llm) / 1e3:.0f}",
                       str(tokens), f"{train / 1e9:,.1f}", f"{real / 1e9:,.1f} / {padded / 1e9:,.1f}",
                       f"{padded / train:.2f}x"])
        if shape != args.shape:
            continue
        # Decoding the target as the answer: the context is the prompt plus, on average, half the answer.
        decode = decode_step_counts(llm, [tokens - targets / 2])
        question = int(QUESTION_SECONDS * 16000)
        prompt = len(model.processor.encode(QUESTION, [question]).input_ids)
        first = []
        for pad in (False, True):
            with encoder.padding(pad_to_seconds=30 if pad else None):
                first.append(first_token_counts(model, prompt, question, True))
        for name, tflops, tbs in PEAKS:
            hw = Hardware(name, tflops, tbs)
            ttft = [1e3 * floor_seconds(c["flops"], c["bytes"], hw) for c in first]
            step = floor_seconds(*decode, hw)
            floors.append([name, f"{tflops * 1e12 / train:,.1f}", f"{tflops * 1e12 / (train + padded):,.1f}",
                           f"{1e3 * step:.2f}", f"{1 / step:,.0f}", f"{ttft[0]:.1f} / {ttft[1]:.1f}"])
    print(f"per clip: {args.seconds:g} s of audio, {args.target_tokens}-token target, bf16 LLM weights")
    print_table(["shape", "LLM params", "encoder params", "LLM GB read/pass", "KV KB/token", "LLM tokens",
                 "LLM+projector train GFLOP", "encoder GFLOP real / 30 s", "30 s encoder / train"], counts)
    print(f"\n{args.shape} floors at the spec peaks of PEAKS (dense bf16, HBM)")
    print_table(["GPU", "train clips/s, cached (MFU 100%)", "train clips/s, naive 30 s encoder",
                 "decode ms/token, batch 1", "decode tokens/s, batch 1",
                 f"TTFT ms, {QUESTION_SECONDS:g} s question, kit / naive"], floors)
    if args.measure_peaks:
        device = resolve_device(args.device)
        tflops, tbs = measure_peaks(device)
        print(f"\nmeasured on {hardware(device, None, None).name}: "
              f"matmul {tflops:.3g} TFLOP/s, read {tbs:.3g} TB/s")


if __name__ == "__main__":
    main()
