"""Alignment training steps against their floor: the naive recipe, the kit's, the kit's with its cache.

    python bench/train_step.py --shape small --clips 32 --threads 1        # CPU: ratios
    python bench/train_step.py --shape 7b --clips 480 --batch-seconds 240  # one H100/H200/A100, bf16

Random weights of `--shape` (7b: Whisper-large-v3 encoder + Qwen2.5-7B-Instruct, with the projector and
prompt of configs/whisper_large_v3_qwen2_5_7b.yaml), built on the device itself; noise clips of 2-20 s
(mean ~8 s) with ~100-token targets. Every variant trains on the same clips, one pass, through the kit's
own `train.align.step` (bf16 autocast on a GPU, AdamW on the projector), after `--warmup` untimed steps;
its time is the fastest of `--repeats` passes, the variants taking turns:

- naive: every clip padded to 30 s through the encoder, random order, a fixed batch of
  batch_seconds / 30 clips (what the same padded-seconds budget holds when every clip counts 30 s);
- kit: real-length encoder; clips sorted by length and cut into batches of <= batch_seconds padded audio
  (train.data.cut_batches), batch order shuffled;
- kit + cache: as kit with the encoder outputs computed once beforehand (the feature cache), so the
  step skips the encoder; the one-off fill is timed apart.

Model FLOPs of a step (conventions in bench/counting.py), over real tokens only:
    LLM:       2 x (linear layers + LM head at target positions) + 3 x (causal attention core), forward FLOPs
               -- backward is input-gradient only: 1x forward for linear layers, 2x for attention
    projector: 3 x forward
MFU = model FLOPs / seconds / peak (n/a on a CPU unless --peak-tflops or --measure-peaks gives a peak):
the same work in every variant, so MFU tracks samples/s. The frozen
encoder's forward is not model FLOPs; it enters the floor of the variants that run it:
    floor = max((model FLOPs + encoder FLOPs) / peak, (2 x LLM weights + encoder weights) / bandwidth)
per step, summed; measured/floor is how far the step is from the hardware.
"""

from __future__ import annotations

import argparse
import functools
import gc
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lalm.bench import counting, harness, shapes
from lalm.model import LALM, pad_waveforms
from lalm.processor import IGNORE, collate
from lalm.train import distributed
from lalm.train.align import Run, lr_factor, step
from lalm.train.config import AlignConfig, DataConfig, TrainConfig
from lalm.train.data import Row, cut_batches
from lalm.train.objectives import OBJECTIVES

WORDS = ["the", "a", "of", "to", "and", "in", "is", "it", "you", "that", "was", "for", "on", "are", "with"]


def make_rows(n: int, target_tokens: int, seed: int) -> list[Row]:
    """Clips of realistic length; targets of `target_tokens` characters (= tokens: the random LLM's
    tokenizer is byte-level)."""
    rng = np.random.default_rng(seed + 1)
    rows = []
    for i, seconds in enumerate(shapes.clip_seconds(n, seed)):
        target = " ".join(rng.choice(WORDS, size=target_tokens))[:target_tokens]
        rows.append(Row(0, i, str(i), f"noise-{i}", float(seconds), target, None, False, None))
    return rows


def samples(row: Row) -> int:
    """The clip's length in samples, as `shapes.noise(row.duration, ...)` makes it."""
    return int(row.duration * 16000)


def load(model: LALM, rows: list[Row], features: dict | None) -> dict:
    """A batch as train.data.BatchLoader.load makes it, from noise (or cached features) in memory."""
    processor = model.processor
    examples = [processor.encode(r.conversation(), [samples(r)], r.target) for r in rows]
    batch = {"skipped": [], "rows": len(rows), "audio_seconds": sum(r.duration for r in rows),
             **collate(examples, processor.tokenizer.pad_token_id)}
    batch["num_targets"] = int((batch["labels"][:, 1:] != IGNORE).sum())  # what the loss is normalised by
    if features is None:
        waves = [shapes.noise(r.duration, r.line) for r in rows]
        batch["waveforms"], batch["wave_lengths"] = pad_waveforms(waves)
    else:
        batch["encoder_features"] = {}
        for name in model.branches:
            clips = [features[r.line][name] for r in rows]
            lengths = torch.tensor([c.shape[0] for c in clips], device=clips[0].device)
            batch["encoder_features"][name] = (nn.utils.rnn.pad_sequence(clips, batch_first=True), lengths)
    return batch


def cost(model: LALM, rows: list[Row], batch: dict, encoder: str | None) -> dict:
    """Model FLOPs, encoder FLOPs, bytes read and padding of one batch; `encoder`: "pad30", "real" or None."""
    lengths = batch["attention_mask"].sum(1).tolist()
    targets = int((batch["labels"][:, 1:] != IGNORE).sum())
    enc = counting.whisper(model)
    clips = [samples(r) for r in rows] if encoder else []
    frames = counting.encoder_window_frames(enc, clips, encoder == "pad30")
    real_frames = counting.audio_window_frames(clips)
    return {
        "model_flops": counting.train_flops(model, lengths, targets, int((batch["slots"] > 0).sum())),
        "encoder_flops": counting.encoder_flops(enc, frames),
        "bytes": 2 * counting.llm_read_bytes(model.llm) + (counting.weight_bytes(enc) if encoder else 0),
        "tokens": sum(lengths), "padded_tokens": batch["attention_mask"].numel(),
        "encoder_frames": sum(real_frames), "encoder_padded_frames": len(frames) * max(frames, default=0),
    }


def make_run(model: LALM, device: torch.device) -> Run:
    """What train.align.setup builds around the model, minus data and checkpoints."""
    cfg = AlignConfig(model=model.config, train=TrainConfig(warmup_steps=1))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.train.lr, betas=tuple(cfg.train.betas),
                                  weight_decay=cfg.train.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, functools.partial(lr_factor, cfg=cfg.train))
    objective = OBJECTIVES.get(cfg.train.objective)()
    return Run(cfg, distributed.Dist(device=device), model, objective, params, optimizer, scheduler, [], [], [1.0],
               None, Path(tempfile.gettempdir()))


@dataclass
class Variant:
    """One recipe's pass over the clips: its batches, their costs, and how the encoder runs."""

    batches: list[dict]
    costs: list[dict]
    encoder: str | None  # "pad30", "real", or None: cached features, no encoder
    error: str | None = None
    peak_memory_gb: float | None = None

    def train(self, run: Run, steps: int | None = None) -> None:
        """Train on the first `steps` batches (all by default); running out of memory is recorded."""
        if self.error:
            return
        device = run.dist.device
        harness.reset_peak_memory(device)
        try:
            with counting.whisper(run.model).padding(pad_to_seconds=30 if self.encoder == "pad30" else None):
                for b in self.batches[:steps]:
                    step(run, [b])
        except torch.cuda.OutOfMemoryError as err:
            self.error = f"out of memory: {str(err).splitlines()[0]}"
            run.optimizer.zero_grad(set_to_none=True)
            gc.collect()
            torch.cuda.empty_cache()
        peak = harness.peak_memory_gb(device)
        if peak is not None:
            self.peak_memory_gb = max(peak, self.peak_memory_gb or 0.0)

    def summary(self, seconds: float, hw: counting.Hardware) -> dict:
        if self.error:
            return {"error": self.error}
        total = {k: sum(c[k] for c in self.costs) for k in self.costs[0]}
        floors = [counting.floor_seconds(c["model_flops"] + c["encoder_flops"], c["bytes"], hw)
                  for c in self.costs]
        floor = None if None in floors else sum(floors)
        clips = sum(b["rows"] for b in self.batches)
        return {
            "steps": len(self.batches), "clips": clips, "seconds": seconds, "samples_per_s": clips / seconds,
            "audio_h_per_device_h": sum(b["audio_seconds"] for b in self.batches) / seconds,
            "tokens_per_s": total["tokens"] / seconds,
            "llm_padding": 1 - total["tokens"] / total["padded_tokens"],
            "encoder_padding": 1 - total["encoder_frames"] / total["encoder_padded_frames"]
            if total["encoder_padded_frames"] else None,
            "model_tflop": total["model_flops"] / 1e12, "encoder_tflop": total["encoder_flops"] / 1e12,
            "achieved_tflops": total["model_flops"] / seconds / 1e12,
            "mfu": total["model_flops"] / seconds / (hw.peak_tflops * 1e12) if hw.peak_tflops else None,
            "floor_seconds": floor, "measured_over_floor": seconds / floor if floor else None,
            "peak_memory_gb": self.peak_memory_gb,
        }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python bench/train_step.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_common_args(parser, list(shapes.SHAPES))
    parser.add_argument("--clips", type=int, default=32, help="clips in the pass each variant trains on")
    parser.add_argument("--target-tokens", type=int, default=100, help="target length in tokens")
    parser.add_argument("--batch-seconds", type=float, default=80.0,
                        help="padded audio seconds per kit batch; naive batches hold batch_seconds / 30 clips")
    parser.add_argument("--max-batch-size", type=int, default=32, help="clips per kit batch at most")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before each timed pass")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(repeats=1)
    return parser


def plans(rows: list, args: argparse.Namespace) -> tuple[list[list[int]], list[list[int]]]:
    """The kit's batches (duration-sorted, cut by padded seconds, then shuffled) and the naive ones
    (random order, a fixed batch_seconds / 30 clips each, as 30 s padding would allow)."""
    rng = np.random.default_rng(args.seed)
    sorted_order = sorted(range(len(rows)), key=lambda i: rows[i].duration)
    kit = cut_batches(sorted_order, rows, DataConfig(batch_seconds=args.batch_seconds,
                                                     max_batch_size=args.max_batch_size))
    kit = [kit[i] for i in rng.permutation(len(kit))]
    naive_size = max(1, int(args.batch_seconds // 30))
    naive = cut_batches(list(rng.permutation(len(rows))), rows,
                        DataConfig(batch_seconds=float("inf"), max_batch_size=naive_size))
    return kit, naive


def fill_cache(model, rows: list, kit: list[list[int]], device) -> tuple[dict, float]:
    """The feature cache, filled as train.feature_cache does (real-length batches), and its time."""
    t0 = harness.clock(device)
    features = {}
    for batch in kit:
        b = load(model, [rows[i] for i in batch], None)
        encoded = model.encode_audio(b["waveforms"].to(device), b["wave_lengths"].to(device))
        for j, i in enumerate(batch):
            features[i] = {n: f[j, : int(ln[j])] for n, (f, ln) in encoded.items()}
    return features, harness.clock(device) - t0


def print_results(results: dict[str, dict]) -> None:
    base = results["naive"].get("samples_per_s")
    table = []
    for name, r in results.items():
        if "error" in r:
            table.append([name] + ["-"] * 9 + [r["error"]])
            continue
        table.append([
            name, str(r["steps"]), f"{r['clips'] / r['steps']:.1f}", f"{r['samples_per_s']:.2f}",
            f"{r['audio_h_per_device_h']:.1f}", harness.fmt(base and r["samples_per_s"] / base, ".2f", "x"),
            f"{100 * r['llm_padding']:.0f}%", f"{r['achieved_tflops']:.3f}",
            harness.fmt(r["mfu"] and 100 * r["mfu"], ".1f", "%"),
            harness.fmt(r["measured_over_floor"], ".1f", "x"), harness.fmt(r["peak_memory_gb"], ".1f", " GB"),
        ])
    print()
    harness.print_table(["variant", "steps", "clips/step", "samples/s", "audio h / device h", "vs naive",
                        "LLM padding", "model TFLOP/s", "MFU", "measured/floor", "peak memory"], table)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    device, hw, info = harness.start(args)
    torch.manual_seed(args.seed)
    model = shapes.build_model(args.shape, device)
    run = make_run(model, device)
    model.train()
    rows = make_rows(args.clips, args.target_tokens, args.seed)
    kit, naive = plans(rows, args)
    features, fill = fill_cache(model, rows, kit, device)

    variants = {}
    for name, plan, encoder, feats in (("naive", naive, "pad30", None), ("kit", kit, "real", None),
                                       ("kit + cache", kit, None, features)):
        picked = [[rows[i] for i in batch] for batch in plan]
        batches = [load(model, r, feats) for r in picked]
        costs = [cost(model, r, b, encoder) for r, b in zip(picked, batches)]
        variants[name] = Variant(batches, costs, encoder)
    for v in variants.values():
        v.train(run, args.warmup)
    passes = {name: functools.partial(v.train, run) for name, v in variants.items()}
    times = harness.race(passes, device, args.repeats)
    results = {name: v.summary(times[name], hw) for name, v in variants.items()}
    print_results(results)
    print(f"\nfeature cache fill (one-off, real-length encoder, {len(rows)} clips): {fill:.2f} s")
    harness.save_results(f"train_step_{args.shape}", {**info, "args": vars(args), "cache_fill_seconds": fill,
                                                     "results": results})


if __name__ == "__main__":
    main()
