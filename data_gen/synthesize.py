"""Speak a text set: questions (`prompt`) or transcripts (`text`) -> 16 kHz wav files + an ASR-style manifest.

    python -m data_gen.synthesize --input questions.jsonl --out-dir spoken/

Writes `spoken/wavs/<id>.wav` and `spoken/manifest.jsonl` with one row per clip: `id`, `audio` (relative
to the manifest), `text` (what was spoken), `duration`, `meta` {gender, voice, speed, pitch} and every
other input field (`reference`, `answers`, ...). The voice of each row is drawn from a seed and the row
id, so reruns and resumed runs give the same voice. The manifest feeds `python -m data_gen.sift` and
spoken-QA evaluation directly. Rerunning resumes: rows in the manifest whose wav exists are skipped.
"""

from __future__ import annotations

import argparse
import io
import json
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
from lalm.data_gen.tts import TTS, TTS_ENGINES, TTSError
from lalm.encoders.base import SAMPLE_RATE
from lalm.errors import run_command
from lalm.jsonl import appending, read_jsonl, repair_tail, write_atomic, write_json_atomic, write_jsonl_atomic

#: Fields the manifest sets itself; every other input field is carried over unchanged.
OWN_FIELDS = ("id", "audio", "text", "duration", "meta")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m data_gen.synthesize",
        description="Speak every row of a JSONL text set with a TTS engine: writes OUT_DIR/wavs/*.wav (16 kHz "
                    "mono) and OUT_DIR/manifest.jsonl in the ASR-manifest format, plus manifest.rejects.jsonl "
                    "and manifest.summary.json. Rerunning the same command resumes.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--input", required=True,
                   help="JSONL rows with `id` and the text to speak in `prompt` (question sets) or `text` "
                        "(transcript lists); other fields are carried into the manifest")
    p.add_argument("--out-dir", required=True, type=Path, help="folder for wavs/ and manifest.jsonl")
    p.add_argument("--tts", default="espeak", help=f"TTS engine; available: {', '.join(TTS_ENGINES.names())}")
    p.add_argument("--voices", help="comma-separated voices to draw from, each a name from the engine's catalogue "
                                    "(espeak: en+m3, en+m7, en+f2, en+f4) or NAME=GENDER for any other voice, "
                                    "e.g. 'en+m3,en-us+f5=female', or @FILE[:KEY] for a JSON object "
                                    "{voice: gender} (default: the whole catalogue)")
    p.add_argument("--speeds", help="LO-HI range to draw speeds from (espeak: words per minute; default 140-190)")
    p.add_argument("--pitches", help="LO-HI range to draw pitches from (espeak: 0-99; default 35-65)")
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
    engine_class = TTS_ENGINES.get(args.tts)
    tts = engine_class(parse_voices(args.voices, engine_class.VOICES), parse_range(args.speeds, "--speeds"),
                       parse_range(args.pitches, "--pitches"))
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
        "tts": args.tts,
        "voices": tts.voices,
        "speeds": list(tts.speeds),
        "pitches": list(tts.pitches),
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


def speak_row(tts: TTS, seed: int, out_dir: Path, record: Record, row_id: str) -> dict | Reject:
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


def parse_voices(spec: str | None, catalogue: dict[str, str]) -> dict[str, str] | None:
    """`en+m3,en-us+f5=female` -> {voice: gender}; names without a gender must be in the catalogue.

    `@FILE` reads a JSON object {voice: gender} instead, for catalogues too long for a command line;
    `@FILE:KEY` reads the object under KEY (e.g. `@voices.json:train`).
    """
    if not spec:
        return None
    if spec.startswith("@"):
        path, _, key = spec[1:].partition(":") if not Path(spec[1:]).is_file() else (spec[1:], "", "")
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"--voices {spec}: cannot read a JSON voice list ({err})") from err
        data = data.get(key) if key else data
        if not isinstance(data, dict) or not data or not all(isinstance(g, str) for g in data.values()):
            raise ValueError(f"--voices {spec}: expected a non-empty JSON object {{voice: gender}}"
                             + (f" under {key!r}" if key else ""))
        return dict(data)
    voices = {}
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        name, sep, gender = item.partition("=")
        if not sep and name not in catalogue:
            raise ValueError(f"--voices: {name!r} is not in the catalogue ({', '.join(catalogue)}); "
                             "give other voices as NAME=GENDER")
        voices[name] = gender if sep else catalogue[name]
    return voices


def parse_range(spec: str | None, flag: str) -> tuple[int, int] | None:
    if not spec:
        return None
    low, sep, high = spec.partition("-")
    if not (sep and low.isdigit() and high.isdigit() and int(low) <= int(high)):
        raise ValueError(f"{flag} {spec!r}: expected LO-HI, e.g. 140-190")
    return int(low), int(high)


if __name__ == "__main__":
    sys.exit(main())
