"""Text measurements the IFEval checkers need, without IFEval's nltk data or required langdetect.

Google's IFEval counts words with nltk's ``\\w+`` tokenizer (reproduced exactly), sentences with
nltk's punkt model and capitalised words with ``nltk.word_tokenize``, and names languages with
``langdetect``. Punkt's model is a download this project cannot rely on, so sentences are split by a
rule that behaves like punkt on ordinary prose: a run of ``.``/``!``/``?`` followed by whitespace or
the end ends a sentence, except after a known abbreviation or a single-letter initial. Capitalised
words use a regex tokenizer that, like ``word_tokenize``, keeps hyphenated words and dotted
acronyms whole.

``langdetect`` is used when installed (seeded, since it is random otherwise); without it a small
script-and-stopword heuristic covers the 30 languages IFEval asks for. It is reliable on
non-Latin scripts and on full sentences in Latin-script languages, weaker on very short replies.
``LANGUAGE_DETECTOR`` says which one ran, and the ifeval summary records it together with
``SENTENCE_SPLITTER`` and ``WORD_TOKENIZER``.

These are strict mode's measurements. Parity mode (``ifeval_parity``) measures with nltk's punkt
model, ``nltk.word_tokenize`` and langdetect themselves, and refuses to run without them.
"""

from __future__ import annotations

import re
from collections import Counter

_ABBREVIATIONS = frozenset(
    (
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "jr",
        "sr",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "inc",
        "ltd",
        "co",
        "fig",
        "approx",
        "dept",
        "capt",
        "lt",
        "mt",
    )
)
SENTENCE_SPLITTER = "kit rule (punkt-like, no nltk data)"
WORD_TOKENIZER = "kit regex (hyphenated words and dotted acronyms whole)"
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)")


def count_words(text: str) -> int:
    """Number of ``\\w+`` tokens, as IFEval counts words."""
    return len(re.findall(r"\w+", text))


def count_sentences(text: str) -> int:
    """Number of sentences (punkt-like rule; see the module docstring)."""
    count, start = 0, 0
    for end in _SENTENCE_END.finditer(text):
        word = text[start : end.start()].split()[-1:] or [""]
        token = word[0].lower().strip("\"'([")
        if end.group(0).startswith(".") and (
            token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())
        ):
            continue
        if text[start : end.end()].strip():
            count += 1
        start = end.end()
    return count + (1 if re.search(r"\w", text[start:]) else 0)


def capital_words(text: str) -> int:
    """Number of all-capital word tokens ("NASA", "U.S.", "I"), as IFEval's capital-word check counts."""
    return sum(token.isupper() for token in re.findall(r"\w+(?:[-.'’]\w+)*\.?", text))


_SCRIPTS: tuple[tuple[str, str], ...] = (
    ("latin", r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]"),
    ("cyrillic", r"[\u0400-\u04ff]"),
    ("arabic", r"[\u0600-\u06ff]"),
    ("devanagari", r"[\u0900-\u097f]"),
    ("ko", r"[\uac00-\ud7af]"),
    ("ja", r"[\u3040-\u30ff]"),
    ("zh-cn", r"[\u4e00-\u9fff]"),
    ("th", r"[\u0e00-\u0e7f]"),
    ("he", r"[\u0590-\u05ff]"),
    ("bn", r"[\u0980-\u09ff]"),
    ("pa", r"[\u0a00-\u0a7f]"),
    ("gu", r"[\u0a80-\u0aff]"),
    ("ta", r"[\u0b80-\u0bff]"),
    ("te", r"[\u0c00-\u0c7f]"),
    ("kn", r"[\u0c80-\u0cff]"),
    ("ml", r"[\u0d00-\u0d7f]"),
)
_STOPWORDS: dict[str, frozenset[str]] = {
    code: frozenset(words.split())
    for code, words in {
        "en": "the and is are of to in that it you for with this was be on not have they",
        "es": "el los las que y es en del por para con una se no lo como más pero sus",
        "pt": "o os que e é em um uma para com não do da dos das se mais como mas",
        "fr": "le les et est un une des que pour dans pas du en ce qui sur au avec",
        "de": "der die das und ist nicht ein eine zu mit den von sie es ich auf für",
        "it": "il gli che e è un una di per non con del della sono anche come più",
        "fi": "ja on ei se että hän mutta kun tai ovat oli myös ole tämä joka",
        "pl": "i w nie na się jest że do to z jak ale czy tak są",
        "sw": "na ya wa kwa ni za katika hii yake kama pia sana",
        "vi": "và là của có không được những trong một các cho với người",
    }.items()
}


def _has(text: str, chars: str) -> bool:
    return any(ch in text for ch in chars)


def _latin(text: str) -> str | None:
    words = Counter(re.findall(r"\w+", text.lower()))
    hits = {code: sum(words[w] for w in stop) for code, stop in _STOPWORDS.items()}
    best = max(hits, key=lambda code: hits[code])
    return best if hits[best] else None


def _devanagari(text: str) -> str:
    words = set(text.split())
    if "ळ" in text or words & {"आहे", "आणि", "नाही"}:
        return "mr"
    return "ne" if words & {"छ", "छन्", "हुन्छ"} else "hi"


# Scripts several IFEval languages share, told apart by letters or words only one of them uses.
_RESOLVE = {
    "latin": _latin,
    "cyrillic": lambda t: "uk" if _has(t, "іїєґ") else "bg" if "ъ" in t and not _has(t, "ыэ") else "ru",
    "arabic": lambda t: "ur" if _has(t, "ٹڈڑںے") else "fa" if _has(t, "پچژگیک") else "ar",
    "devanagari": _devanagari,
}


def _heuristic_language(text: str) -> str | None:
    counts = {name: len(re.findall(pattern, text)) for name, pattern in _SCRIPTS}
    script = max(counts, key=lambda name: counts[name])
    if counts[script] == 0:
        return None
    if script == "zh-cn" and counts["ja"]:
        return "ja"
    return _RESOLVE[script](text) if script in _RESOLVE else script


try:
    import langdetect
except ImportError:
    langdetect = None
else:
    langdetect.DetectorFactory.seed = 0

LANGUAGE_DETECTOR = "langdetect" if langdetect else "heuristic (script + stopwords)"


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of ``text``'s language (langdetect's spelling), or None when undetectable.

    IFEval counts an undetectable language as following the instruction; the checkers do the same.
    """
    if langdetect is None:
        return _heuristic_language(text)
    try:
        return langdetect.detect(text)
    except langdetect.LangDetectException:
        return None
