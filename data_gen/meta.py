"""Speaker metadata normalised to one vocabulary, so the LLM sees `happy` whether a corpus says `hap` or `joy`.

Corpora label the same thing many ways (IEMOCAP `hap`, CREMA-D `HAP`, ESD `Happy`, Common Voice ages
`twenties`). `META_MAP` is the one table of raw label -> canonical label, per field; its field order
is the order in which labels are rendered into prompts. Users extend it with a yaml file of the same
shape (`--meta-map extra.yaml`), e.g.::

    emotion: {joyful: happy, calm: neutral}
    accent: {us: American, gb: British}   # a new field: rendered after the built-in ones

A raw value mapped to null (`~` in yaml) means "not known" and drops the field for that row. A value the
table does not know is an error that names the field, the value and the valid values, because a silently
passed-through typo (`fearfull`) would become a label the model is trained on.
"""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from lalm.errors import UserError

#: Raw label (compared lower-cased and stripped) -> canonical label, per metadata field. Canonical labels
#: are valid raw labels too, so only aliases need listing.
META_MAP: dict[str, dict[str, str | None]] = {
    "gender": {"m": "male", "man": "male", "male_masculine": "male", "f": "female", "woman": "female",
               "female_feminine": "female"},
    "age": {"child": "child", "kid": "child", "teen": "teenager", "teens": "teenager", "teenager": "teenager",
            "twenties": "young adult", "thirties": "young adult", "young adult": "young adult",
            "forties": "middle-aged adult", "fourties": "middle-aged adult", "fifties": "middle-aged adult",
            "middle-aged adult": "middle-aged adult", "sixties": "senior", "seventies": "senior",
            "eighties": "senior", "nineties": "senior", "elderly": "senior", "senior": "senior"},
    "emotion": {"neu": "neutral", "neutrality": "neutral", "hap": "happy", "happiness": "happy", "joy": "happy",
                "joyful": "happy", "exc": "excited", "excitement": "excited", "sad": "sad", "sadness": "sad",
                "ang": "angry", "anger": "angry", "fru": "frustrated", "frustration": "frustrated",
                "fea": "fearful", "fear": "fearful", "scared": "fearful", "sur": "surprised", "surprise": "surprised",
                "dis": "disgusted", "disgust": "disgusted", "cal": "calm", "calm": "calm"},
    "language": {"en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian",
                 "pt": "Portuguese", "nl": "Dutch", "ru": "Russian", "pl": "Polish", "tr": "Turkish",
                 "sv": "Swedish", "zh": "Chinese", "zh-cn": "Chinese", "ja": "Japanese", "ko": "Korean",
                 "ar": "Arabic", "hi": "Hindi"},
    # measured on each synthesised clip (data_gen.pace); a medium pace is no label
    "pace": {"fast": "fast speech", "slow": "slow speech", "medium": None},
}

#: Values that mean "not known" in any field; such a field is dropped rather than rejected.
ABSENT = frozenset({"", "unk", "unknown", "n/a", "na", "none", "null"})

#: Ages in years: an age below the bound gets the group, i.e. 0-12 child, 13-19 teenager,
#: 20-39 young adult, 40-59 middle-aged adult, 60 and over senior.
AGE_GROUPS: tuple[tuple[float, str], ...] = (
    (13, "child"), (20, "teenager"), (40, "young adult"), (60, "middle-aged adult"), (math.inf, "senior"),
)
MAX_AGE = 130


class MetaError(UserError, ValueError):
    """A metadata value outside the table; the message names the field, the value and the valid values."""


class MetaNormaliser:
    """Maps raw metadata to canonical labels with `META_MAP` plus optional user extensions."""

    def __init__(self, extra: dict[str, dict[str, str | None]] | None = None):
        self.table: dict[str, dict[str, str | None]] = {}
        for source in (META_MAP, extra or {}):
            for field, mapping in source.items():
                entries = self.table.setdefault(field, {})
                for raw, canonical in mapping.items():
                    entries[str(raw).strip().lower()] = canonical
                    if canonical is not None:
                        entries.setdefault(canonical.lower(), canonical)

    @property
    def fields(self) -> list[str]:
        """The fields rendered into prompts, in rendering order."""
        return list(self.table)

    def normalise(self, meta: dict) -> dict:
        """Canonical labels for the table's fields; other keys (speaker ids...) pass through unchanged."""
        out = {}
        for key, value in meta.items():
            if key not in self.table:
                out[key] = value
                continue
            label = self.label(key, value)
            if label is not None:
                out[key] = label
        return out

    def label(self, field: str, value: object) -> str | None:
        """One canonical label, or None where the value means "not known"."""
        if value is None or str(value).strip().lower() in ABSENT:
            return None
        if field == "age" and _is_number(value):
            return age_group(float(value))
        key = str(value).strip().lower()
        if key not in self.table[field]:
            valid = sorted({v for v in self.table[field].values() if v is not None})
            numbers = "a number of years or " if field == "age" else ""
            raise MetaError(f"meta.{field}: unknown value {value!r}; valid: {numbers}{', '.join(valid)} "
                            f"(extend the table with --meta-map)")
        return self.table[field][key]

    def render(self, meta: dict) -> list[str]:
        """The labels of a normalised meta dict in table order: what goes into `(male, happy)`."""
        return [meta[field] for field in self.fields if meta.get(field) is not None]


def age_group(years: float) -> str:
    """The age group of an age in years (see AGE_GROUPS)."""
    if not 0 <= years <= MAX_AGE:
        raise MetaError(f"meta.age: {years:g} years is not a plausible age (0-{MAX_AGE})")
    return next(group for bound, group in AGE_GROUPS if years < bound)


def load_meta_map(path: str | Path | None) -> MetaNormaliser:
    """The built-in table extended by a yaml file of `field: {raw: canonical}` mappings."""
    if path is None:
        return MetaNormaliser()
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict) or not all(isinstance(m, dict) for m in data.values()):
        raise ValueError(f"{path}: expected a mapping of field -> {{raw label: canonical label}}")
    return MetaNormaliser(data)


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return True
