"""Voice lists that mix TTS engines: parsing `--voices` specs and drawing one voice per row.

A spec is `ENGINE:VOICE[:OPTION=VALUE]...`, comma-separated in a list:

    espeak:en+m3                      an engine's voice (its gender from the catalogue)
    espeak:en-us+f5:gender=female     a voice outside the catalogue needs its gender
    kokoro:jf_alpha*0.6+jm_kumo*0.4   a kokoro style blend
    piper:joe:speed=0.9-1.1           this voice's own speed range (or one value: speed=1.1)
    flite:kal16:pitch=95-120:weight=3 pitch range; drawn 3 times as often as a weight-1 voice

Options: speed, pitch (LO-HI or one value, in the engine's units), gender, weight. Without `ENGINE:` a
voice belongs to the default engine (`--tts`), and `VOICE=GENDER` is the older way to give a gender.
`@FILE` reads a JSON object {spec: gender} instead, `@FILE:KEY` the object under KEY (e.g.
`@voices.json:train`); a null gender there means the catalogue's.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lalm.data_gen.tts import TTS, TTS_ENGINES, Range, Voice

OPTIONS = ("speed", "pitch", "gender", "weight")
GENDERS = ("male", "female")


@dataclass(frozen=True)
class VoiceSpec:
    engine: str
    voice: str
    gender: str
    speeds: Range | None = None
    pitches: Range | None = None
    weight: float = 1.0

    @property
    def key(self) -> str:
        return f"{self.engine}:{self.voice}"

    @property
    def training(self) -> bool:
        """Whether the catalogue lets this voice speak training data (others are for evaluation)."""
        return TTS_ENGINES.get(self.engine).is_training_voice(self.voice)


def parse_range(text: str, what: str) -> Range:
    """`0.9-1.1` or `150` -> (low, high)."""
    low, sep, high = text.partition("-")
    try:
        span = (float(low), float(high if sep else low))
    except ValueError:
        span = (1.0, 0.0)
    if not 0 <= span[0] <= span[1]:
        raise ValueError(f"{what} {text!r}: expected LO-HI or one value, e.g. 0.9-1.1")
    return span


def parse_voice_spec(item: str, default_engine: str = "espeak", gender: str | None = None) -> VoiceSpec:
    """One spec (see the module docstring); `gender` comes from a JSON voice list."""
    fields = item.strip().split(":")
    if len(fields) > 1 and fields[0] in TTS_ENGINES:
        engine = fields.pop(0)
    elif len(fields) > 1 and "=" not in fields[1]:  # not VOICE:OPTION=..., so ENGINE:VOICE with a typo
        raise ValueError(f"voice {item!r}: unknown engine {fields[0]!r}; engines: {', '.join(TTS_ENGINES.names())}")
    else:
        engine = default_engine
    engine_class = TTS_ENGINES.get(engine)
    name, options = fields[0], {}
    if "=" in name:  # the older NAME=GENDER
        name, _, options["gender"] = name.partition("=")
    for option in fields[1:]:
        key, sep, value = option.partition("=")
        if not sep or key not in OPTIONS:
            raise ValueError(f"voice {item!r}: {option!r} is not an option; options: "
                             f"{', '.join(f'{o}=...' for o in OPTIONS)}")
        options[key] = value
    if not name:
        raise ValueError(f"voice {item!r}: no voice name")
    name = engine_class.spec_name(name)
    gender = options.get("gender") or gender or engine_class.gender_of(name)
    if gender is None:
        known = ", ".join(engine_class.known_voices()) or "none"
        raise ValueError(f"voice {item!r}: {name!r} is not in the catalogue of {engine} ({known}); "
                         f"give its gender, e.g. {engine}:{name}:gender=female")
    if gender not in GENDERS:
        raise ValueError(f"voice {item!r}: gender {gender!r} is not one of {', '.join(GENDERS)}")
    try:
        weight = float(options.get("weight", 1.0))
    except ValueError:
        weight = -1.0
    if not weight > 0:
        raise ValueError(f"voice {item!r}: weight must be a positive number")
    return VoiceSpec(engine, name, gender,
                     parse_range(options["speed"], "speed") if "speed" in options else None,
                     parse_range(options["pitch"], "pitch") if "pitch" in options else None, weight)


def parse_voices(spec: str | None, default_engine: str = "espeak") -> list[VoiceSpec]:
    """A `--voices` value: comma-separated specs and @FILE[:KEY] lists, in any mix; empty: the default
    engine's catalogue."""
    if not spec:
        engine = TTS_ENGINES.get(default_engine)
        return [VoiceSpec(default_engine, name, gender) for name, gender in sorted(engine.VOICES.items())]
    if spec.startswith("@") and Path(spec[1:]).is_file():  # a file whose name holds a comma
        return [parse_voice_spec(name, default_engine, gender) for name, gender in read_voice_file(spec).items()]
    specs = []
    for item in (part.strip() for part in spec.split(",")):
        if item.startswith("@"):
            specs += [parse_voice_spec(name, default_engine, gender) for name, gender in read_voice_file(item).items()]
        elif item:
            specs.append(parse_voice_spec(item, default_engine))
    if not specs:
        raise ValueError(f"--voices {spec!r}: no voices")
    return specs


def read_voice_file(spec: str) -> dict[str, str | None]:
    """`@FILE` or `@FILE:KEY` -> {voice spec: gender or None}."""
    path, _, key = spec[1:].partition(":") if not Path(spec[1:]).is_file() else (spec[1:], "", "")
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"--voices {spec}: cannot read a JSON voice list ({err})") from err
    data = data.get(key) if key and isinstance(data, dict) else data
    if not isinstance(data, dict) or not data or not all(g is None or isinstance(g, str) for g in data.values()):
        raise ValueError(f"--voices {spec}: expected a non-empty JSON object {{voice: gender}}"
                         + (f" under {key!r}" if key else ""))
    return data


def parse_engine_ranges(spec: str | None, flag: str, default_engine: str) -> dict[str, Range]:
    """`--speeds 130-200` (the default engine), `espeak=130-200,kokoro=0.9-1.1` (per engine) or
    `espeak/female=45-80` (an engine's voices of one gender) -> {engine or engine/gender: range}."""
    ranges = {}
    for item in (s.strip() for s in (spec or "").split(",") if s.strip()):
        key, sep, span = item.rpartition("=")
        engine, slash, gender = (key if sep else default_engine).partition("/")
        TTS_ENGINES.get(engine)
        if slash and gender not in GENDERS:
            raise ValueError(f"{flag} {item!r}: {gender!r} is not a gender; use ENGINE/{'|'.join(GENDERS)}=LO-HI")
        ranges[f"{engine}/{gender}" if slash else engine] = parse_range(span, flag)
    return ranges


class VoiceMix:
    """Engines and the voices drawn among them: one engine object per engine the voice list names."""

    def __init__(self, specs: list[VoiceSpec], speeds: dict[str, Range] | None = None,
                 pitches: dict[str, Range] | None = None, threads: int | None = None):
        speeds, pitches = speeds or {}, pitches or {}
        unused = sorted({k.partition("/")[0] for k in (*speeds, *pitches)} - {s.engine for s in specs})
        if unused:
            raise ValueError(f"--speeds/--pitches name engines with no voice in the list: {', '.join(unused)}")
        self.specs = sorted(specs, key=lambda s: s.key)
        self.engines: dict[str, TTS] = {}
        # ranges for one gender's voices of an engine (`espeak/female=45-80`): below a voice's own range,
        # above the engine's, so pitch can follow gender as it does in people
        self.by_gender = {"speed": {k: v for k, v in speeds.items() if "/" in k},
                          "pitch": {k: v for k, v in pitches.items() if "/" in k}}
        for spec in self.specs:
            if spec.engine not in self.engines:
                self.engines[spec.engine] = TTS_ENGINES.get(spec.engine)(
                    speeds=speeds.get(spec.engine), pitches=pitches.get(spec.engine), threads=threads)
            engine = self.engines[spec.engine]
            try:
                engine.canonical(spec.voice)  # fails now, not at the first row, for a voice not installed
                engine.check_range(spec.speeds, "speed")
                engine.check_range(spec.pitches, "pitch")
            except ValueError as err:
                raise ValueError(f"voice {spec.key}: {err}") from err
            engine.prepare(spec.voice)
        for what, ranges in self.by_gender.items():
            for key, span in ranges.items():
                self.engines[key.partition("/")[0]].check_range(span, what)
        weights = [s.weight for s in self.specs]
        self.weights = None if len(set(weights)) == 1 else weights

    def draw(self, rng: random.Random) -> Voice:
        """A voice for one row (seed `rng` by row); equal weights draw as the single-engine draw did."""
        spec = rng.choice(self.specs) if self.weights is None else rng.choices(self.specs, self.weights)[0]
        key = f"{spec.engine}/{spec.gender}"
        return self.engines[spec.engine].make_voice(spec.voice, spec.gender, rng,
                                                    spec.speeds or self.by_gender["speed"].get(key),
                                                    spec.pitches or self.by_gender["pitch"].get(key))

    def speak(self, text: str, voice: Voice) -> np.ndarray:
        return self.engines[voice.engine].speak(text, voice)

    def describe(self) -> dict:
        """For the run summary: the voices with their genders and weights, and which are evaluation-only."""
        return {
            "voices": {s.key: s.gender for s in self.specs},
            "weights": {s.key: s.weight for s in self.specs if s.weight != 1.0},
            "speeds": {name: list(e.speeds) for name, e in self.engines.items()},
            "pitches": {name: list(e.pitches) if e.pitches else None for name, e in self.engines.items()},
            **{f"{plural}_by_gender": {k: list(v) for k, v in self.by_gender[what].items()}
               for what, plural in (("speed", "speeds"), ("pitch", "pitches")) if self.by_gender[what]},
            "evaluation_voices": [s.key for s in self.specs if not s.training],
        }
