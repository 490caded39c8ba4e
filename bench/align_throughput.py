"""Audio seconds trained per second: the naive recipe against the kit's defaults, in one run.

    python bench/align_throughput.py [--clips 48] [--steps 12]

naive: every clip padded to 30 s through the encoder, no feature cache, fixed batches of 4 in
random order. kit: real lengths, length-grouped batches bounded by audio seconds, and (third row)
the feature cache. Both use the same model (Whisper-tiny-shaped encoder + a small random LLM) and
the same clips (2-20 s, mean ~8 s), so only the recipe differs. Absolute numbers on a shared CPU
are noise; the ratios are the result.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from lalm.bench.common import report, synthetic_corpus
from lalm.config import load_config
from lalm.paths import kit_config
from lalm.train.align import setup, train
from lalm.train.config import AlignConfig

ENCODER = ("{d_model: 384, encoder_layers: 4, encoder_attention_heads: 6, encoder_ffn_dim: 1536, "
           "num_mel_bins: 80, max_source_positions: 1500}")
LLM = ("{model_type: qwen2, hidden_size: 256, intermediate_size: 768, num_hidden_layers: 4, "
       "num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 4096}")


def run(name: str, corpus: Path, out: Path, steps: int, extra: list[str]) -> tuple[float, float]:
    """Train `steps` steps; returns (audio seconds per training second, setup seconds)."""
    overrides = [
        f"model.branches.0.encoder.random_config={ENCODER}", f"model.llm.random_config={LLM}",
        "model.branches.0.projector.options={k: 8}",
        f"data.train.0.path={corpus}", "data.valid_fraction=0", "data.max_audio_seconds=30",
        f"train.out_dir={out / name}", f"train.steps={steps}", "train.eval_every=0", f"train.save_every={steps}",
        f"train.log_every={steps}", "train.warmup_steps=1", *extra,
    ]
    cfg = load_config(kit_config("tiny_align.yaml"), overrides, cls=AlignConfig)
    t0 = time.perf_counter()
    state = setup(cfg)
    t1 = time.perf_counter()
    train(state)
    # log_every = steps, so the one metrics line spans the whole training loop.
    metrics = json.loads((out / name / "metrics.jsonl").read_text().splitlines()[-1])
    return metrics["audio_s_per_s"], t1 - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = synthetic_corpus(tmp / "data", args.clips)
        naive, _ = run("naive", corpus, tmp, args.steps, [
            "model.branches.0.encoder.options={pad_to_seconds: 30}", "data.group_by_length=false",
            "data.max_batch_size=4", "data.batch_seconds=1000"])
        kit, _ = run("kit", corpus, tmp, args.steps, ["data.batch_seconds=80"])
        cached, fill = run("kit_cache", corpus, tmp, args.steps,
                           ["data.batch_seconds=80", f"data.feature_cache={tmp / 'cache'}"])
        report("align throughput (audio seconds trained per second)", [
            ("naive (30 s padding, no cache, fixed batch 4)", naive, "audio-s/s"),
            ("kit (real lengths, length-grouped, 80 s batches)", kit, "audio-s/s"),
            ("kit + feature cache (steady state)", cached, "audio-s/s"),
        ], baseline="naive (30 s padding, no cache, fixed batch 4)")
        print(f"feature cache fill for {args.clips} clips happened once, in setup ({fill:.1f} s incl. model build)")


if __name__ == "__main__":
    main()
