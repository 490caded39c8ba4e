"""Speak a text set: questions (`prompt`) or transcripts (`text`) -> 16 kHz wav files + an ASR-style manifest.

    python -m data_gen.synthesize --input questions.jsonl --out-dir spoken/

Writes `spoken/wavs/<id>.wav` and `spoken/manifest.jsonl` with one row per clip: `id`, `audio` (relative
to the manifest), `text` (what was spoken), `duration`, `meta` {gender, voice, engine, accent, speed, pitch}
and every other input field (`reference`, `answers`, ...). `--voices` mixes engines (data_gen/voices.py).
The voice of each row is drawn from a seed and the row id, so reruns and resumed runs give the same voice. The manifest feeds `python -m data_gen.sift` and
spoken-QA evaluation directly. Rerunning resumes: rows in the manifest whose wav exists are skipped.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from lalm.audio import AudioError
from lalm.console import progress
from lalm.data_gen.cli import HelpFormatter
from lalm.data_gen.pace import pace_meta
from lalm.data_gen.rows import Reject, identify, list_rejects
from lalm.data_gen.sources import Record, jsonl_records
from lalm.data_gen.store import safe_name, sidecar
from lalm.data_gen.tts import TTS_ENGINES, TTSError
from lalm.data_gen.voices import VoiceMix, parse_engine_ranges, parse_voices
from lalm.encoders.base import SAMPLE_RATE
from lalm.errors import run_command
from lalm.jsonl import appending, read_jsonl, repair_tail, write_atomic, write_json_atomic, write_jsonl_atomic

#: Fields the manifest sets itself; every other input field is carried over unchanged.
OWN_FIELDS = ("id", "audio", "text", "duration", "meta")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m data_gen.synthesize",
        description="Speak every row of a JSONL text set with TTS voices: writes OUT_DIR/wavs/*.wav (16 kHz "
                    "mono) and OUT_DIR/manifest.jsonl in the ASR-manifest format, plus manifest.rejects.jsonl "
                    "and manifest.summary.json. Rerunning the same command resumes.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--input", required=True,
                   help="JSONL rows with `id` and the text to speak in `prompt` (question sets) or `text` "
                        "(transcript lists); other fields are carried into the manifest")
    p.add_argument("--out-dir", required=True, type=Path, help="folder for wavs/ and manifest.jsonl")
    p.add_argument("--tts", default="espeak", help="engine of voices given without ENGINE: (and of the default "
                                                   f"voice list); available: {', '.join(TTS_ENGINES.names())}")
    p.add_argument("--voices", help="comma-separated voices to draw from, any mix of engines, each "
                                    "ENGINE:VOICE[:speed=LO-HI][:pitch=LO-HI][:gender=G][:weight=W], e.g. "
                                    "'espeak:en+m3,piper:joe,kokoro:jf_alpha*0.6+jm_kumo*0.4,flite:kal16,"
                                    "festival:ked_diphone'; a voice outside the catalogue needs gender=; "
                                    "@FILE[:KEY] reads a JSON object {voice: gender} (default: the --tts "
                                    "engine's training voices; see docs/data_gen.md)")
    p.add_argument("--speeds", help="LO-HI range to draw speeds from, for the --tts engine or per engine as "
                                    "ENGINE=LO-HI,... (espeak: words per minute, default 140-190; others: a "
                                    "multiplier, default 0.85-1.15)")
    p.add_argument("--pitches", help="LO-HI range to draw pitches from, like --speeds (espeak: 0-99, default "
                                     "35-65; flite, festival: mean F0 in Hz, default by gender); "
                                     "ENGINE/GENDER=LO-HI gives one gender's voices their own range, e.g. "
                                     "espeak/male=20-60,espeak/female=40-80 (a voice's own pitch= comes first)")
    p.add_argument("--seed", type=int, default=0, help="seed of the per-row voice draws")
    p.add_argument("--workers", type=int, default=2, help="clips synthesised in parallel")
    p.add_argument("--batch-size", type=int, default=16,
                   help="clips per manifest append (a kill loses at most one batch, which a rerun redoes)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: run(args), (ValueError, KeyError, OSError))


def run(args: argparse.Namespace) -> dict:
    started = time.monotonic()
    # Each worker's ONNX engine gets its share of the cores rather than all of them.
    tts = VoiceMix(parse_voices(args.voices, args.tts), parse_engine_ranges(args.speeds, "--speeds", args.tts),
                   parse_engine_ranges(args.pitches, "--pitches", args.tts),
                   threads=max(1, (os.cpu_count() or 1) // max(1, args.workers)))
    manifest = args.out_dir / "manifest.jsonl"
    (args.out_dir / "wavs").mkdir(parents=True, exist_ok=True)
    done = kept_rows(manifest)

    jobs: list[tuple[Record, str]] = []
    rejects: list[Reject] = []
    for item in identify(jsonl_records(args.input)):
        if isinstance(item, Reject):
            rejects.append(item)
        elif item[1] not in done:
            jobs.append(item)

    written = 0
    audio_seconds = 0.0
    with appending(manifest) as write, ThreadPoolExecutor(args.workers) as pool, \
            progress(total=len(jobs), desc="synthesising", unit="clip") as bar:
        for start in range(0, len(jobs), args.batch_size):
            batch = jobs[start:start + args.batch_size]
            results = list(pool.map(lambda job: speak_row(tts, args.seed, args.out_dir, *job), batch))
            rows = [r for r in results if isinstance(r, dict)]
            rejects += [r for r in results if isinstance(r, Reject)]
            write(rows)
            written += len(rows)
            audio_seconds += sum(r["duration"] for r in rows)
            bar.update(len(batch))

    rejects.sort(key=lambda r: r.line)
    list_rejects(rejects, str(args.input))
    write_jsonl_atomic(sidecar(manifest, "rejects.jsonl"), (r.to_json() for r in rejects))
    seconds = time.monotonic() - started
    summary = {
        "manifest": str(manifest),
        "tts": sorted(tts.engines),
        **tts.describe(),
        "seed": args.seed,
        "done_before": len(done),
        "synthesized": written,
        "rejects": len(rejects),
        "audio_seconds": round(audio_seconds, 2),
        "seconds": round(seconds, 3),
    }
    write_json_atomic(sidecar(manifest, "summary.json"), summary)
    print(f"synthesize: {summary['done_before']} clips done before, {summary['synthesized']} synthesised "
          f"({audio_seconds:.1f} s of audio) in {seconds:.1f} s, {len(rejects)} rejects\n"
          f"  manifest {manifest}, rejects {sidecar(manifest, 'rejects.jsonl')}")
    return summary


def speak_row(tts: VoiceMix, seed: int, out_dir: Path, record: Record, row_id: str) -> dict | Reject:
    """Speak one row and write its wav; returns its manifest row, or a Reject saying why not."""
    data = record.data
    text = data.get("prompt", data.get("text"))
    if not isinstance(text, str) or not text.strip():
        return Reject(record.line, row_id, f"text: no text to speak in `prompt` or `text` (got {text!r})")
    voice = tts.draw(random.Random(f"{seed}:{row_id}"))
    try:
        audio = tts.speak(text.strip(), voice)
    except (TTSError, AudioError, OSError) as err:
        return Reject(record.line, row_id, f"tts: {err}")
    relative = f"wavs/{safe_name(row_id)}.wav"
    write_atomic(out_dir / relative, wav_bytes(audio))
    return {
        "id": data["id"],
        "audio": relative,
        "text": text.strip(),
        "duration": round(len(audio) / SAMPLE_RATE, 3),
        "meta": {**(data.get("meta") or {}), **voice.meta(), **pace_meta(text, audio)},
        **{k: v for k, v in data.items() if k not in OWN_FIELDS},
    }


def kept_rows(manifest: Path) -> set[str]:
    """Ids of manifest rows whose wav exists; rows whose wav went missing are dropped so they are redone."""
    repair_tail(manifest)
    if not manifest.exists():
        return set()
    rows = read_jsonl(manifest)
    kept = [row for row in rows if (manifest.parent / row["audio"]).is_file()]
    if len(kept) != len(rows):
        write_jsonl_atomic(manifest, kept)
    return {str(row["id"]) for row in kept}


def wav_bytes(audio: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


if __name__ == "__main__":
    sys.exit(main())
