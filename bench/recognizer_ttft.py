"""Time to first token with the recognizer in the path: the demo's model (Whisper's transcript + the
continuous meta branch) against the same model with no transcript (continuous only), the naive floor.

    python bench/recognizer_ttft.py                  # the demo recipe's real weights (offline packages)
    python bench/recognizer_ttft.py --seconds 3 --repeats 5

TTFT is the wall time of `generate` with max_new_tokens=1 on one spoken question (espeak-ng), from
the waveform: encoders, the recognizer's stock 30 s encoder pass and greedy decoding, the prompt,
prefill, the first token. A third row reuses the clip encoded once (`encode_clip`, the transcript
kept in the EncodedClip), as a chat's later turns do. Prints each TTFT and its ratio to continuous only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from lalm.bench.common import report


def spoken_question(seconds: float) -> torch.Tensor:
    from lalm.data_gen.tts import EspeakTTS

    tts = EspeakTTS()
    words = "What is the capital of Japan, and which river runs through the middle of it today"
    wave = torch.from_numpy(tts.speak(words, tts.draw(__import__("random").Random(0))))
    n = int(seconds * 16000)
    return torch.nn.functional.pad(wave, (0, max(0, n - wave.numel())))[: max(n, wave.numel())]


def ttft(model, audio, repeats: int) -> float:
    model.generate([audio], "", max_new_tokens=1)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.generate([audio], "", max_new_tokens=1)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="a model config with a recognizer (default: the demo's)")
    parser.add_argument("--seconds", type=float, default=5.0, help="question length (default 5 s)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per row (median; default 5)")
    args = parser.parse_args(argv)

    from lalm import LALM, load_config
    from lalm.paths import kit_config

    torch.manual_seed(0)
    config = args.config or kit_config("demo_offline.yaml")
    with_transcript = LALM(load_config(config).model).eval()
    plain = load_config(config).model
    plain.recognizer, plain.prompt.layout = None, plain.prompt.layout.replace("{transcript}", "")
    continuous = LALM(plain).eval()
    wave = spoken_question(args.seconds)
    rows = [("continuous only", ttft(continuous, wave, args.repeats) * 1000, "ms"),
            ("transcript + continuous", ttft(with_transcript, wave, args.repeats) * 1000, "ms"),
            ("transcript + continuous, clip encoded once", ttft(with_transcript, with_transcript.encode_clip(wave),
                                                                args.repeats) * 1000, "ms")]
    report(f"time to first token, one {wave.numel() / 16000:.1f} s question, {torch.get_num_threads()} threads",
           rows, "continuous only")


if __name__ == "__main__":
    sys.exit(main())
