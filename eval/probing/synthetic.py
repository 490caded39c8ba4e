"""Offline probing tasks the kit makes itself, with espeak-ng (speech) and sox (sounds), so encoder
probes run anywhere. Each maker plans its clips from the seed alone (deterministic), renders the
missing ones (two at a time, each written under a temporary name and renamed), and writes the task
folder last: a finished task is reused as it is, an interrupted one resumes.

Speech tasks split their sentences (and, where the task is about the voice, their voices) between
train, validation and test, so a probe must generalise rather than recognise a recording; each row
keeps how it was made in `meta` (voice, rate, pitch, text; waveform and frequency for sounds).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from lalm import console
from lalm.demo.texts import TRAIN_TEXTS, VOICES
from lalm.errors import UserError
from lalm.eval.probing.tasks import Clip, TaskInfo, read_task, write_task

DATA = Path(__file__).resolve().parent / "data"
DEFAULT_SIZE = 240
SHARES = (("train", 0.6), ("valid", 0.2), ("test", 0.2))
KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
LANGUAGES = ("en", "de", "fr", "es", "it", "pt", "nl", "pl", "sv", "tr", "fi")
VARIANTS = ("m1", "m2", "m3", "m4", "f1", "f2", "f3", "f4")  # espeak-ng voice variants, for language ID
RATE_BINS = {"slow": (90, 115), "medium": (155, 175), "fast": (230, 260)}  # words per minute (espeak -s)
PITCH_BINS = {"low": (5, 20), "middle": (45, 55), "high": (85, 99)}  # espeak -p, 0-99
SOUNDS = ("sine", "square", "sawtooth", "triangle", "whitenoise", "pinknoise", "brownnoise", "upchirp", "downchirp")
NOTES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


class ToolMissing(UserError):
    """espeak-ng or sox is not installed."""


@dataclass
class Plan:
    """One clip to make: its label and split, and the tool's arguments (`meta`)."""

    label: str
    split: str
    meta: dict = field(default_factory=dict)


@cache
def sentences() -> dict[str, list[str]]:
    other = {k: v for k, v in json.loads((DATA / "sentences.json").read_text(encoding="utf-8")).items()
             if not k.startswith("_")}
    return {"en": list(TRAIN_TEXTS), **other}


def split_of(index: int, total: int) -> str:
    """train / valid / test for the index-th of `total` shuffled things (60/20/20, at least one each)."""
    valid_at, test_at = max(1, round(total * 0.6)), max(2, round(total * 0.8))
    return "train" if index < valid_at else "valid" if index < test_at else "test"


def partition(items: list, rng: random.Random) -> dict[str, list]:
    """`items` shuffled and cut 60/20/20 into train, valid and test."""
    shuffled = items[:]
    rng.shuffle(shuffled)
    out: dict[str, list] = {"train": [], "valid": [], "test": []}
    for i, item in enumerate(shuffled):
        out[split_of(i, len(shuffled))].append(item)
    return out


def balanced(labels: list[str], size: int, rng: random.Random) -> list[tuple[str, str]]:
    """(label, split) pairs: `size` clips spread evenly over labels, each label 60/20/20."""
    per = max(3, size // len(labels))
    pairs = [(label, split_of(i, per)) for label in labels for i in range(per)]
    rng.shuffle(pairs)
    return pairs


def voice_pools(rng: random.Random) -> dict[str, dict[str, str]]:
    """Voices by split: the demo's training voices cut into train and valid, its held-out voices as test."""
    train = sorted(VOICES["train"])
    rng.shuffle(train)
    cut = round(0.8 * len(train))
    return {"train": {v: VOICES["train"][v] for v in train[:cut]},
            "valid": {v: VOICES["train"][v] for v in train[cut:]}, "test": dict(VOICES["eval"])}


def speech(text: str, voice: str, rate: int, pitch: int) -> dict:
    return {"tool": "espeak-ng", "text": text, "voice": voice, "rate": rate, "pitch": pitch}


# --- the tasks: each returns (description, labels, plans) --------------------------------------------


def plan_voice_id(size: int, rng: random.Random):
    voices = sorted(VOICES["train"])[:8]
    texts = partition(sentences()["en"], rng)
    plans = [Plan(v, s, speech(rng.choice(texts[s]), v, rng.randint(140, 190), rng.randint(40, 60)))
             for v, s in balanced(voices, size, rng)]
    return "which of 8 espeak-ng voices speaks (sentences differ between train and test)", voices, plans


def plan_gender(size: int, rng: random.Random):
    pools, texts = voice_pools(rng), partition(sentences()["en"], rng)
    plans = []
    for label, split in balanced(["female", "male"], size, rng):
        voice = rng.choice(sorted(v for v, g in pools[split].items() if g == label))
        plans.append(Plan(label, split, speech(rng.choice(texts[split]), voice, rng.randint(130, 200),
                                               rng.randint(30, 70))))
    return "the speaker's gender; test voices are never heard in training", ["female", "male"], plans


def plan_language_id(size: int, rng: random.Random):
    texts = {lang: partition(sentences()[lang], rng) for lang in LANGUAGES}
    plans = [Plan(lang, s, speech(rng.choice(texts[lang][s]), f"{lang}+{rng.choice(VARIANTS)}",
                                  rng.randint(130, 190), rng.randint(30, 70)))
             for lang, s in balanced(list(LANGUAGES), size, rng)]
    return f"which of {len(LANGUAGES)} languages is spoken (sentences differ between splits)", list(LANGUAGES), plans


def plan_binned(bins: dict[str, tuple[int, int]], what: str):
    def plan(size: int, rng: random.Random):
        pools, texts = voice_pools(rng), partition(sentences()["en"], rng)
        plans = []
        for label, split in balanced(list(bins), size, rng):
            value = rng.randint(*bins[label])
            rate = value if what == "rate" else rng.randint(140, 190)
            pitch = value if what == "pitch" else rng.randint(30, 70)
            plans.append(Plan(label, split, speech(rng.choice(texts[split]), rng.choice(sorted(pools[split])),
                                                   rate, pitch)))
        ranges = ", ".join(f"{k} {a}-{b}" for k, (a, b) in bins.items())
        return f"espeak-ng {what} bin ({ranges}); voices and sentences vary, test voices held out", list(bins), plans

    return plan


def plan_keyword(size: int, rng: random.Random):
    pools = voice_pools(rng)
    plans = [Plan(word, s, speech(word, rng.choice(sorted(pools[s])), rng.randint(120, 200), rng.randint(25, 75)))
             for word, s in balanced(list(KEYWORDS), size, rng)]
    return "which of 10 keywords is spoken; test voices are never heard in training", list(KEYWORDS), plans


def plan_sound_type(size: int, rng: random.Random):
    plans = []
    for kind, split in balanced(list(SOUNDS), size, rng):
        low = round(rng.uniform(150, 1500))
        meta = {"tool": "sox", "kind": kind, "seconds": round(rng.uniform(0.8, 2.0), 2),
                "volume": round(rng.uniform(0.2, 0.8), 2), "frequency": low}
        if kind.endswith("chirp"):
            meta["frequency"] = f"{low}-{low * 4}" if kind == "upchirp" else f"{low * 4}-{low}"
        plans.append(Plan(kind, split, meta))
    return "tone shape, noise colour or chirp direction (sox); frequency, length and level vary", list(SOUNDS), plans


def plan_pitch_class(size: int, rng: random.Random):
    plans = []
    for note, split in balanced(list(NOTES), size, rng):
        midi = 12 * rng.randint(4, 7) + NOTES.index(note)  # octaves 3-6: the probe must learn the class
        meta = {"tool": "sox", "kind": rng.choice(["sine", "triangle", "square"]), "midi": midi,
                "frequency": round(440.0 * 2 ** ((midi - 69) / 12), 2), "seconds": 1.0,
                "volume": round(rng.uniform(0.3, 0.7), 2)}
        plans.append(Plan(note, split, meta))
    return "musical pitch class of a note in octaves 3-6, three timbres (sox)", list(NOTES), plans


PLANNERS: dict[str, Callable] = {
    "voice_id": plan_voice_id, "gender": plan_gender, "language_id": plan_language_id,
    "speaking_rate": plan_binned(RATE_BINS, "rate"), "pitch_level": plan_binned(PITCH_BINS, "pitch"),
    "keyword": plan_keyword, "sound_type": plan_sound_type, "pitch_class": plan_pitch_class,
}
SYNTHETIC = tuple(PLANNERS)


# --- rendering ---------------------------------------------------------------------------------------


def command(meta: dict, wav: Path) -> tuple[list[str], bytes | None]:
    """The espeak-ng or sox command that makes one clip at `wav` (and its stdin)."""
    if meta["tool"] == "espeak-ng":
        return (["espeak-ng", "-v", meta["voice"], "-s", str(meta["rate"]), "-p", str(meta["pitch"]), "-w", str(wav),
                 "--stdin"], meta["text"].encode("utf-8"))
    kind = meta["kind"]
    wave = "sine" if kind.endswith("chirp") else kind
    tone = [] if kind.endswith("noise") else [str(meta["frequency"])]
    return (["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", str(wav), "synth", str(meta["seconds"]), wave,
             *tone, "vol", str(meta["volume"])], None)


def render(meta: dict, wav: Path) -> None:
    if wav.is_file():
        return
    tmp = wav.with_name(f".{wav.stem}.tmp{os.getpid()}.wav")
    argv, stdin = command(meta, tmp)
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, timeout=120, check=False)
        if done.returncode != 0 or not tmp.is_file():
            raise RuntimeError(f"{argv[0]} failed making {wav}: {done.stderr.decode(errors='replace').strip()}")
        os.replace(tmp, wav)
    finally:
        tmp.unlink(missing_ok=True)


def make_task(name: str, out_dir: str | Path, size: int | None = None, seed: int = 0, progress: bool = True) -> Path:
    """Make (or reuse) the synthetic task `name` under out_dir/name; returns the task folder."""
    if name not in PLANNERS:
        raise UserError(f"unknown synthetic task {name!r}; valid: {', '.join(SYNTHETIC)}")
    size = size or DEFAULT_SIZE
    folder = Path(out_dir) / name
    source = f"lalm synthetic:{name} size={size} seed={seed}"
    if (folder / "task.json").is_file() and read_task(folder).info.source == source:
        return folder
    description, labels, plans = PLANNERS[name](size, random.Random(f"{name}:{seed}"))
    tools = {p.meta["tool"] for p in plans}
    missing = [t for t in sorted(tools) if shutil.which(t) is None]
    if missing:
        raise ToolMissing(f"the {name} task needs {', '.join(missing)}: apt-get install -y espeak-ng sox")
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    wavs = [folder / "clips" / f"{name}-{i:05d}.wav" for i in range(len(plans))]
    with ThreadPoolExecutor(2) as pool:
        jobs = pool.map(lambda job: render(*job), [(p.meta, w) for p, w in zip(plans, wavs)])
        for _ in console.progress(jobs, total=len(plans), desc=name, unit="clip", disable=not progress):
            pass
    clips = [Clip(w.stem, str(w), p.label, split=p.split, group=p.meta.get("voice"), meta=p.meta)
             for p, w in zip(plans, wavs)]
    info = TaskInfo(name, labels=labels, description=description, source=source)
    return write_task(folder, info, clips)
