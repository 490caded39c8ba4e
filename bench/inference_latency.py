"""Time to first token and decode speed for a 10 s spoken question: the kit's path against the naive one.

    python bench/inference_latency.py --shape small --threads 1     # CPU: ratios
    python bench/inference_latency.py --shape 7b                    # GPU; target: TTFT <= 100 ms on an H100

A 10 s clip (noise) is the user's spoken question, answered by `LALM.generate_batch` (greedy) with random
weights of `--shape` (7b: Whisper-large-v3 encoder + Qwen2.5-7B-Instruct in bf16, the projector and
prompt of configs/whisper_large_v3_qwen2_5_7b.yaml). TTFT is the wall time of a call with
max_new_tokens=1: prompt building, encoder, projector, prefill with inputs_embeds, the first token.

- naive: the encoder pads the clip to 30 s, as stock Whisper does;
- kit: the encoder runs on the clip's real 10 s (the default);
- turn 2, re-encode: a follow-up question after a first answer, the clip passed again as audio;
- turn 2, EncodedClip: the same conversation, the clip encoded once by `encode_clip` and reused;
- kit, bf16 autocast (GPU only): the kit runs its encoder and projector in float32 at inference; this
  row measures what running them in bf16 would gain.
Decode tokens/s (kit, batch 1) = N / (time of 1 + N tokens - TTFT). Reference: the Ultravox model card
reports ~150 ms TTFT on an A100 with an 8B LLM; the target here is <= 100 ms on an H100.

Floors (conventions in bench/counting.py):
    TTFT   = max((encoder + projector + LLM prefill + one LM head row) FLOPs / peak,
                 weights read once (encoder if it runs, projector, LLM but the embedding table) / bandwidth)
    decode = max(FLOPs / peak, (LLM weights but the embedding table + KV cache of the context) / bandwidth)
"""

from __future__ import annotations

import argparse

import torch

from lalm.bench import counting, harness, shapes
from lalm.model import LALM

QUESTION = shapes.QUESTION
NAIVE, KIT = "naive (30 s padded encoder)", "kit (default encoder padding)"
TURN2_WAVE, TURN2_CLIP, DECODE = "turn 2, re-encode the clip", "turn 2, reuse EncodedClip", "decode"
FOLLOW_UP = QUESTION + [
    {"role": "assistant", "content": "It depends on the season: spring and autumn are mild, summer is hot."},
    {"role": "user", "content": [{"type": "text", "text": "And what should I pack for it?"}]},
]


def answering(model: LALM, conversation: list, audio, tokens: int, pad_to_30s: bool = False,
              bf16: bool = False):
    """A call that has generate_batch produce exactly `tokens` tokens, the encoder padding to 30 s or not."""
    def answer():
        with counting.whisper(model).padding(pad_to_seconds=30 if pad_to_30s else None):
            with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16):
                model.generate_batch([conversation], [[audio]], max_new_tokens=tokens, min_new_tokens=tokens)

    return answer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python bench/inference_latency.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_common_args(parser, list(shapes.SHAPES))
    parser.add_argument("--seconds", type=float, default=shapes.QUESTION_SECONDS,
                        help="length of the spoken question")
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens decoded for the decode rate")
    return parser


def with_floors(model, variants: dict, times: dict, wave, hw) -> dict[str, dict]:
    """Each path's measured TTFT beside its counted FLOPs, bytes and roofline floor."""
    results = {}
    for name, (conversation, audio, pad_to_30s, _) in variants.items():
        tokens = len(model.processor.encode(conversation, [wave.numel()]).input_ids)
        with counting.whisper(model).padding(pad_to_seconds=30 if pad_to_30s else None):
            counts = counting.first_token_counts(model, tokens, wave.numel(), audio is wave)
        floor = counting.floor_seconds(counts["flops"], counts["bytes"], hw)
        results[name] = {"ttft_s": times[name], "prompt_tokens": tokens, **counts, "floor_s": floor,
                         "measured_over_floor": times[name] / floor if floor else None}
    return results


def print_results(results: dict[str, dict], decode: dict, new_tokens: int) -> None:
    base = results[NAIVE]["ttft_s"]
    print()
    harness.print_table(
        ["path", "prompt tokens", "TTFT ms", "speed-up vs naive", "encoder GFLOP", "floor ms",
         "measured/floor"],
        [[name, str(r["prompt_tokens"]), f"{1e3 * r['ttft_s']:.1f}", f"{base / r['ttft_s']:.2f}x",
          f"{r['encoder_flops'] / 1e9:.1f}", harness.fmt(r["floor_s"] and 1e3 * r["floor_s"], ".2f"),
          harness.fmt(r["measured_over_floor"], ".1f", "x")] for name, r in results.items()])
    turn2 = results[TURN2_WAVE]["ttft_s"] - results[TURN2_CLIP]["ttft_s"]
    print(f"\nreusing the EncodedClip saves {1e3 * turn2:.1f} ms of the second turn's TTFT "
          f"({100 * turn2 / results[TURN2_WAVE]['ttft_s']:.0f}%)")
    step, floor = decode["step_s"], decode["floor_step_s"]
    print(f"decode (kit, batch 1, {new_tokens} tokens): {1e3 * step:.1f} ms/token = "
          f"{1 / step:.1f} tokens/s; "
          f"floor {harness.fmt(floor and 1e3 * floor, '.2f')} ms/token "
          f"({harness.fmt(decode['floor_tokens_per_s'], '.0f')} tokens/s); "
          f"measured/floor {harness.fmt(decode['measured_over_floor'], '.1f', 'x')}")


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    device, hw, info = harness.start(args)
    torch.manual_seed(0)
    model = shapes.build_model(args.shape, device).eval()
    wave = shapes.noise(args.seconds, 0)
    clip = model.encode_clip(wave)

    variants = {  # name: (conversation, audio, pad_to_30s, bf16 autocast)
        NAIVE: (QUESTION, wave, True, False),
        KIT: (QUESTION, wave, False, False),
        TURN2_WAVE: (FOLLOW_UP, wave, False, False),
        TURN2_CLIP: (FOLLOW_UP, clip, False, False),
    }
    if device.type == "cuda":
        variants["kit, bf16 autocast"] = (QUESTION, wave, False, True)
    runs = {name: answering(model, conversation, audio, 1, pad_to_30s, bf16)
            for name, (conversation, audio, pad_to_30s, bf16) in variants.items()}
    runs[DECODE] = answering(model, QUESTION, wave, 1 + args.new_tokens)
    for run in runs.values():
        run()  # warm-up
    times = harness.race(runs, device, args.repeats)
    results = with_floors(model, variants, times, wave, hw)

    step = (times[DECODE] - times[KIT]) / args.new_tokens
    floor = counting.floor_seconds(*counting.decode_step_counts(
        model.llm, [results[KIT]["prompt_tokens"] + args.new_tokens / 2]), hw)
    decode = {"step_s": step, "tokens_per_s": 1 / step, "floor_step_s": floor,
              "floor_tokens_per_s": 1 / floor if floor else None,
              "measured_over_floor": step / floor if floor else None}
    print_results(results, decode, args.new_tokens)
    harness.save_results(f"inference_latency_{args.shape}", {**info, "args": vars(args), "ttft": results,
                                                            "decode": decode})


if __name__ == "__main__":
    main()
