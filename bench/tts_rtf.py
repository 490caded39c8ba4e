"""Real-time factor of each installed TTS engine (data_gen.tts), against espeak-ng in the same run.

    python bench/tts_rtf.py                       # every installed engine, one training voice each, 1 thread
    python bench/tts_rtf.py --engines espeak,kokoro --repeats 1

RTF = seconds of synthesis / seconds of speech made (lower is faster; 0.1 speaks 10 s in 1 s). Each
engine speaks the same sentences with one of its training voices at speed 1.0, through the kit's own
wrapper, so the time includes resampling to 16 kHz and loudness normalisation (and, for flite and
festival, starting the program once per clip, as synthesize does). Models load before timing. Engines
take turns sentence by sentence in every round and each sentence keeps its fastest round, so a change in
the load of a shared machine hits every engine alike. ONNX engines run on --threads intra-op threads.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

#: engine -> the training voice it is timed with.
VOICES = {"espeak": "en+m3", "piper": "joe", "kokoro": "jf_alpha", "flite": "kal16", "festival": "kal_diphone"}
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital city of France, and how many people live there?",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "A large language model can answer questions about what it hears in a recording.",
    "Please repeat exactly what I said, word for word, without adding anything.",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default=",".join(VOICES), help=f"comma-separated (default: {','.join(VOICES)})")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; each sentence keeps its fastest (3)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of the ONNX engines (1)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from lalm.data_gen.tts import TTS_ENGINES, EngineMissing

    print("command: " + " ".join(["python", "bench/tts_rtf.py", *(argv if argv is not None else sys.argv[1:])]))
    engines, voices = {}, {}
    for name in [e.strip() for e in args.engines.split(",") if e.strip()]:
        try:
            engine = TTS_ENGINES.get(name)(threads=args.threads)
            engine.canonical(VOICES[name])
        except (EngineMissing, ValueError) as err:
            print(f"skipped: {name}: {err}", file=sys.stderr)
            continue
        speed = (175, 175) if engine.INTEGER else (1.0, 1.0)  # espeak-ng's words per minute, else a multiplier
        voice = engine.make_voice(VOICES[name], engine.VOICES[VOICES[name]], random.Random(0), speed)
        engine.speak("Loading the model.", voice)  # load before timing
        engines[name], voices[name] = engine, voice
    if "espeak" not in engines:
        raise SystemExit("error: espeak-ng is the baseline and is not installed (apt-get install espeak-ng)")
    best = {(name, i): float("inf") for name in engines for i in range(len(SENTENCES))}
    audio = {}
    for _ in range(args.repeats):
        for i, sentence in enumerate(SENTENCES):
            for name, engine in engines.items():
                started = time.perf_counter()
                clip = engine.speak(sentence, voices[name])
                best[name, i] = min(best[name, i], time.perf_counter() - started)
                audio[name, i] = len(clip) / 16000
    rtf = {}
    for name in engines:
        spent = sum(best[name, i] for i in range(len(SENTENCES)))
        spoken = sum(audio[name, i] for i in range(len(SENTENCES)))
        rtf[name] = spent / spoken
        print(f"{name} ({VOICES[name]}): {spent:.2f} s for {spoken:.1f} s of speech")
    # RTFs of fast engines are ~0.005: three decimals, not the two of bench.common.report
    print(f"\nTTS real-time factor, {len(SENTENCES)} sentences, best of {args.repeats} rounds, {args.threads} ONNX "
          "thread(s) (lower is faster; ratio = RTF / espeak-ng's)")
    print("| engine (voice) | RTF | ratio vs espeak-ng |\n| --- | --- | --- |")
    for name, value in rtf.items():
        print(f"| {name} ({VOICES[name]}) | {value:.4f} | {value / rtf['espeak']:.2f}x |")

if __name__ == "__main__":
    main()
