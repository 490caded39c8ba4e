"""The floors, counted before anything runs, and what the floor-and-measure benchmarks share.

    python bench/shapes.py                      # each shape's counts; the 7b floors on the GPUs of PEAKS
    python bench/shapes.py --measure-peaks      # also this device's measured matmul and read rates

Shared by bench/train_step.py, bench/decode_floor.py and bench/inference_latency.py: the model shapes and
the models built from them. The counts and their conventions are in bench/counting.py; flags, timing and
result files in bench/harness.py.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

import numpy as np
import torch

from lalm.bench.counting import (
    PEAKS,
    Hardware,
    decode_step_counts,
    encoder_flops,
    encoder_window_frames,
    first_token_counts,
    floor_seconds,
    hardware,
    kv_bytes_per_token,
    llm_read_bytes,
    train_flops,
    whisper,
)
from lalm.bench.harness import measure_peaks, print_table
from lalm.config import ModelConfig, load_config
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


def noise(seconds: float, seed: int) -> torch.Tensor:
    """A clip of 16 kHz noise; the encoder's cost depends on its length only."""
    gen = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(int(seconds * 16000), generator=gen)


def clip_seconds(n: int, seed: int) -> np.ndarray:
    """Utterance lengths as bench.common.synthetic_corpus draws them: gamma (shape 4) with mean 8 s,
    clipped to 2-20 s."""
    return np.clip(np.random.default_rng(seed).gamma(4.0, 8.0 / 4.0, size=n), 2.0, 20.0)


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
