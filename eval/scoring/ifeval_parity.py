"""Parity mode for VoiceBench's ifeval: the rules of VoiceBench's own IFEval evaluator, item by item.

Strict mode (``ifeval_checkers``) is the kit's reading of IFEval: the same rules, with keywords
matched literally and no nltk data needed. Parity mode reproduces what VoiceBench's evaluator
(``src/evaluator/ifeval.py`` and Google's ``instruction_following_eval``, VoiceBench commit 5338154)
actually computes, including its quirks:

* the reply is cleaned of a leading ``<1>``/``<2>``/``<3>`` and a trailing ``<|user|>`` (each
  removal followed by a strip) and otherwise left as it is;
* replies are looked up by prompt text, so items sharing a prompt are all scored with the reply of
  the last of them (``official_replies``);
* every falsy kwarg (None, 0, "", [], False) is dropped before the instruction is built;
* keywords, forbidden words, postscript markers and section splitters are regular expressions,
  used unescaped;
* sentences are counted with nltk's trained English punkt model, all-capital words are counted over
  ``nltk.word_tokenize`` tokens, and languages are named by ``langdetect`` (seeded here; an
  undetectable text counts as following).

Where the official evaluator fills a setting with an unseeded random draw (a required kwarg absent or
falsy, a negative count, an nth paragraph past the paragraph count, a "letter" that is not one ASCII
letter, as IFEval's "#" and "!" items have), no run can reproduce its result. Parity mode draws the
same way from a seeded generator, separately for the strict and the loose pass as the official code
does, and records what it drew; the scorer reports it per item (``random_settings``). Draws that
would need the official word list (missing keywords or first word) raise a ValueError, as do the
settings the official code itself refuses (an unknown relation, a language it has no name for, an
argument the instruction does not take, an empty prompt_to_repeat).

Nothing here falls back to a heuristic: ``unavailable_reason`` says why parity cannot run (nltk, its
punkt_tab data or langdetect missing) and the scorer reports that instead of a number.
"""

from __future__ import annotations

import functools
import json
import random
import re
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import Any

from .ifeval_text import langdetect

RELATIONS = ("less than", "at least")
CHAT_PREFIXES = ("<1>", "<2>", "<3>")
CHAT_SUFFIX = "<|user|>"
CONSTRAINED_RESPONSES = ("My answer is yes.", "My answer is no.", "My answer is maybe.")
#: ISO 639-1 codes the official evaluator can name (its ``LANGUAGE_CODES``); any other code makes it fail.
OFFICIAL_LANGUAGES = frozenset(
    [
        "en",
        "es",
        "pt",
        "ar",
        "hi",
        "fr",
        "ru",
        "de",
        "ja",
        "it",
        "bn",
        "uk",
        "th",
        "ur",
        "ta",
        "te",
        "bg",
        "ko",
        "pl",
        "he",
        "fa",
        "vi",
        "ne",
        "sw",
        "kn",
        "mr",
        "gu",
        "pa",
        "ml",
        "fi",
    ]
)
PUNKT_RESOURCE = "tokenizers/punkt_tab/english/"
PUNKT_MISSING = "NLTK punkt_tab data not found; run `python -m eval.punkt` (or point NLTK_DATA at a copy)"

Predicate = Callable[[str], bool]


# --- what parity needs installed ---------------------------------------------------------------


def unavailable_reason() -> str | None:
    """Why parity mode cannot run here (a missing package or data), or None when it can."""
    try:
        import nltk
    except ImportError:
        return "nltk is not installed; `pip install nltk` (3.9 or later)"
    if not hasattr(nltk.tokenize, "PunktTokenizer"):
        return f"nltk {nltk.__version__} is too old (no PunktTokenizer); install nltk 3.9 or later"
    try:
        nltk.data.find(PUNKT_RESOURCE)
    except LookupError:
        return PUNKT_MISSING
    if langdetect is None:
        return "langdetect is not installed; `pip install langdetect`"
    return None


def tools_description() -> dict[str, str]:
    """What measures text in parity mode, for the summary."""
    import nltk

    try:
        detector = f"langdetect {metadata.version('langdetect')} (seed 0)"
    except metadata.PackageNotFoundError:
        detector = "langdetect (seed 0)"
    return {
        "language_detector": detector,
        "sentence_splitter": f"nltk {nltk.__version__} punkt_tab english",
        "word_tokenizer": f"nltk {nltk.__version__} word_tokenize",
    }


@functools.lru_cache(maxsize=1)
def _punkt() -> Any:
    from nltk.tokenize import PunktTokenizer

    return PunktTokenizer("english")


def punkt_sentence_count(text: str) -> int:
    """Sentences as nltk's trained English punkt model splits them (the official count)."""
    return len(_punkt().tokenize(text))


def word_tokenize_capitals(text: str) -> int:
    """``nltk.word_tokenize`` tokens that are ``str.isupper()`` ("NASA", "U.S.", "I", "'M")."""
    import nltk

    return sum(token.isupper() for token in nltk.word_tokenize(text))


def detected_language(text: str) -> str | None:
    """langdetect's code for ``text``, or None where langdetect finds nothing to go on."""
    try:
        return langdetect.detect(text)
    except langdetect.LangDetectException:
        return None


# --- replies as the official evaluator sees them -----------------------------------------------


def official_reply(response: str) -> str:
    """The reply after the official clean-up of chat tokens; untouched (not even stripped) otherwise."""
    if response.startswith(CHAT_PREFIXES):
        response = response[3:].strip()
    if response.endswith(CHAT_SUFFIX):
        response = response[: -len(CHAT_SUFFIX)].strip()
    return response


def official_replies(prompts: Sequence[str], responses: Sequence[str]) -> list[tuple[int, str]]:
    """Per item, (index of the item whose reply is scored, that reply cleaned).

    The official evaluator keys replies by prompt text over the whole set, a later item overwriting
    an earlier one, so every item sharing a prompt gets the last such item's reply.
    """
    last: dict[str, int] = {}
    for index, prompt in enumerate(prompts):
        last[prompt] = index
    return [(last[p], official_reply(responses[last[p]])) for p in prompts]


# --- settings: the kwargs an instruction is built from -----------------------------------------


#: Where a count is missing, falsy or negative the official builder draws one from these ranges.
RANDOM_COUNTS = {
    "num_sentences": (1, 20),
    "num_placeholders": (1, 4),
    "num_bullets": (1, 5),
    "num_highlights": (1, 4),
    "num_sections": (1, 5),
    "num_paragraphs": (1, 5),
    "frequency": (1, 3),
    "let_frequency": (1, 10),
    "capital_frequency": (1, 20),
    "num_words": (100, 500),
}
#: Where a text setting is missing or falsy the official builder picks one of these.
RANDOM_CHOICES = {
    "postscript_marker": ("P.S.", "P.P.S"),
    "section_spliter": ("Section", "SECTION"),
    "end_phrase": ("Any other questions?", "Is there anything else I can help with?"),
    "language": tuple(sorted(OFFICIAL_LANGUAGES)),
    "relation": RELATIONS,
    "let_relation": RELATIONS,
    "capital_relation": RELATIONS,
}


class _Settings:
    """One instruction's kwargs with falsy values dropped, read as the official builder reads them.

    Where the official builder would draw a random value, one is drawn from ``rng`` instead (the
    official draw is unseeded, so no run can match it) and recorded in ``drawn``.
    """

    def __init__(
        self,
        instruction_id: str,
        kwargs: Mapping[str, Any] | None,
        accepted: Sequence[str],
        rng: random.Random,
    ):
        self.instruction_id = instruction_id
        self.values = {k: v for k, v in (kwargs or {}).items() if v}
        self.rng = rng
        self.drawn: dict[str, Any] = {}
        unexpected = sorted(set(self.values) - set(accepted))
        if unexpected:
            raise ValueError(
                f"{instruction_id}: the official evaluator does not accept kwargs {unexpected} "
                f"(it takes {list(accepted) or 'none'})"
            )

    def draw(self, key: str, value: Any) -> Any:
        self.drawn[key] = value
        return value

    def no_word_list(self, key: str) -> ValueError:
        return ValueError(
            f"{self.instruction_id}: kwarg {key!r} is missing or empty; the official evaluator would pick "
            f"random words from its own word list, which parity mode does not reproduce; fix the item"
        )

    def number(self, key: str, *, negative_ok: bool = False) -> float:
        value = self.values.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{self.instruction_id}: kwarg {key!r} must be a number, got {value!r}")
        if value is None or (value < 0 and not negative_ok):
            return self.draw(key, self.rng.randint(*RANDOM_COUNTS[key]))
        return value

    def text(self, key: str, *, strip: bool = False) -> str:
        value = self.values.get(key)
        if isinstance(value, str) and strip:
            value = value.strip()
        if value is None:
            if key not in RANDOM_CHOICES:
                raise self.no_word_list(key)
            return self.draw(key, self.rng.choice(RANDOM_CHOICES[key]))
        if not isinstance(value, str):  # a data error: ValueError, which the runner reports per file
            raise ValueError(f"{self.instruction_id}: kwarg {key!r} must be a string, got {value!r}")  # noqa: TRY004
        return value

    def words(self, key: str) -> list[str]:
        value = self.values.get(key)
        if value is None:
            raise self.no_word_list(key)
        return sorted(value)

    def relation(self, key: str) -> str:
        value = self.text(key)
        if value not in RELATIONS:
            raise ValueError(f"{self.instruction_id}: relation must be one of {RELATIONS}, got {value!r}")
        return value


def _meets(actual: float, relation: str, threshold: float) -> bool:
    return actual < threshold if relation == "less than" else actual >= threshold


# --- the instructions --------------------------------------------------------------------------
# Each builder reads an instruction's settings and returns the test a reply must pass.


def _keyword_existence(s: _Settings) -> Predicate:
    patterns = s.words("keywords")
    return lambda text: all(re.search(p, text, re.IGNORECASE) for p in patterns)


def _keyword_frequency(s: _Settings) -> Predicate:
    pattern = s.text("keyword", strip=True)
    threshold, relation = s.number("frequency"), s.relation("relation")
    return lambda text: _meets(len(re.findall(pattern, text, re.IGNORECASE)), relation, threshold)


def _forbidden_words(s: _Settings) -> Predicate:
    patterns = [rf"\b{w}\b" for w in s.words("forbidden_words")]
    return lambda text: not any(re.search(p, text, re.IGNORECASE) for p in patterns)


def _letter_frequency(s: _Settings) -> Predicate:
    letter = s.values.get("letter")
    if not (isinstance(letter, str) and len(letter) == 1 and "a" <= letter.lower()[:1] <= "z"):
        # Not one ASCII letter (IFEval asks for "#" and "!"): the official builder picks a random one.
        letter = s.draw("letter", s.rng.choice(string.ascii_letters).lower())
    letter = letter.lower()
    threshold, relation = s.number("let_frequency"), s.relation("let_relation")
    return lambda text: _meets(Counter(text.lower())[letter], relation, threshold)


def _response_language(s: _Settings) -> Predicate:
    language = s.text("language")
    if language not in OFFICIAL_LANGUAGES:
        raise ValueError(f"{s.instruction_id}: the official evaluator has no name for language {language!r}")
    return lambda text: detected_language(text) in (None, language)


def _number_sentences(s: _Settings) -> Predicate:
    threshold, relation = s.number("num_sentences"), s.relation("relation")
    return lambda text: _meets(punkt_sentence_count(text), relation, threshold)


def _number_paragraphs(s: _Settings) -> Predicate:
    wanted = s.number("num_paragraphs")

    def check(text: str) -> bool:
        # Empty pieces at either end do not count; one inside means an empty paragraph, a failure.
        pieces = re.split(r"\s?\*\*\*\s?", text)
        if any(not p.strip() for p in pieces[1:-1]):
            return False
        return sum(1 for p in pieces if p.strip()) == wanted

    return check


def _number_words(s: _Settings) -> Predicate:
    threshold, relation = s.number("num_words"), s.relation("relation")
    return lambda text: _meets(len(re.findall(r"\w+", text)), relation, threshold)


def _nth_paragraph_first_word(s: _Settings) -> Predicate:
    wanted = s.number("num_paragraphs")
    nth = s.values.get("nth_paragraph")
    if nth is None or nth <= 0 or nth > wanted:
        nth = s.draw("nth_paragraph", s.rng.randint(1, int(wanted) + 1))
    first_word = s.text("first_word").lower()

    def check(text: str) -> bool:
        pieces = text.split("\n\n")
        count = sum(1 for p in pieces if p.strip())
        if nth > count:
            return False
        paragraph = pieces[int(nth) - 1].strip()
        if not paragraph:
            return False
        word = paragraph.split()[0].lstrip("'").lstrip('"')
        head = re.match(r"[^.,?!'\"]*", word).group(0)
        # Lowered one character at a time, as the official loop does (no final-sigma rule).
        return count == wanted and "".join(ch.lower() for ch in head) == first_word

    return check


def _number_placeholders(s: _Settings) -> Predicate:
    wanted = s.number("num_placeholders")
    return lambda text: len(re.findall(r"\[.*?\]", text)) >= wanted


def _postscript(s: _Settings) -> Predicate:
    marker = s.text("postscript_marker", strip=True)
    pattern = {"P.P.S": r"\s*p\.\s?p\.\s?s.*$", "P.S.": r"\s*p\.\s?s\..*$"}.get(
        marker, r"\s*" + marker.lower() + r".*$"
    )
    return lambda text: re.search(pattern, text.lower(), re.MULTILINE) is not None


def _number_bullets(s: _Settings) -> Predicate:
    wanted = s.number("num_bullets")
    star, dash = re.compile(r"^\s*\*[^\*].*$", re.MULTILINE), re.compile(r"^\s*-.*$", re.MULTILINE)
    return lambda text: len(star.findall(text)) + len(dash.findall(text)) == wanted


def _constrained_response(s: _Settings) -> Predicate:
    return lambda text: any(option in text.strip() for option in CONSTRAINED_RESPONSES)


def _highlighted_sections(s: _Settings) -> Predicate:
    wanted = s.number("num_highlights")

    def check(text: str) -> bool:
        single = [h for h in re.findall(r"\*[^\n\*]*\*", text) if h.strip("*").strip()]
        double = [h for h in re.findall(r"\*\*[^\n\*]*\*\*", text) if h[2:-2].strip()]
        return len(single) + len(double) >= wanted

    return check


def _multiple_sections(s: _Settings) -> Predicate:
    splitter = s.text("section_spliter", strip=True)
    wanted = s.number("num_sections")
    pattern = r"\s?" + splitter + r"\s?\d+\s?"
    return lambda text: len(re.split(pattern, text)) - 1 >= wanted


def _json_format(s: _Settings) -> Predicate:
    def check(text: str) -> bool:
        body = text.strip()
        for fence in ("```json", "```Json", "```JSON", "```"):
            body = body.removeprefix(fence)
        try:
            json.loads(body.removesuffix("```").strip())
        except (ValueError, RecursionError):  # a reply nested too deeply to parse is not JSON either
            return False
        return True

    return check


def _title(s: _Settings) -> Predicate:
    return lambda text: any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", text))


def _two_responses(s: _Settings) -> Predicate:
    def check(text: str) -> bool:
        pieces = text.split("******")
        if any(not p.strip() for p in pieces[1:-1]):
            return False
        answers = [p.strip() for p in pieces if p.strip()]
        return len(answers) == 2 and answers[0] != answers[1]

    return check


def _repeat_prompt(s: _Settings) -> Predicate:
    if not s.values.get("prompt_to_repeat"):
        raise ValueError(f"{s.instruction_id}: prompt_to_repeat must be set (the official evaluator raises)")
    start = s.values["prompt_to_repeat"].strip().lower()
    return lambda text: text.strip().lower().startswith(start)


def _end_checker(s: _Settings) -> Predicate:
    ending = s.text("end_phrase", strip=True).lower()
    return lambda text: text.strip().strip('"').lower().endswith(ending)


def _quotation(s: _Settings) -> Predicate:
    def check(text: str) -> bool:
        body = text.strip()
        return len(body) > 1 and body[0] == '"' and body[-1] == '"'

    return check


def _capital_word_frequency(s: _Settings) -> Predicate:
    threshold = s.number("capital_frequency", negative_ok=True)
    relation = s.relation("capital_relation")
    return lambda text: _meets(word_tokenize_capitals(text), relation, threshold)


def _english_capital(s: _Settings) -> Predicate:
    return lambda text: text.isupper() and detected_language(text) in (None, "en")


def _english_lowercase(s: _Settings) -> Predicate:
    return lambda text: text.islower() and detected_language(text) in (None, "en")


def _no_comma(s: _Settings) -> Predicate:
    return lambda text: "," not in text


#: instruction id -> (the kwargs its official builder takes, the builder)
BUILDERS: dict[str, tuple[tuple[str, ...], Callable[[_Settings], Predicate]]] = {
    "keywords:existence": (("keywords",), _keyword_existence),
    "keywords:frequency": (("keyword", "frequency", "relation"), _keyword_frequency),
    "keywords:forbidden_words": (("forbidden_words",), _forbidden_words),
    "keywords:letter_frequency": (("letter", "let_frequency", "let_relation"), _letter_frequency),
    "language:response_language": (("language",), _response_language),
    "length_constraints:number_sentences": (("num_sentences", "relation"), _number_sentences),
    "length_constraints:number_paragraphs": (("num_paragraphs",), _number_paragraphs),
    "length_constraints:number_words": (("num_words", "relation"), _number_words),
    "length_constraints:nth_paragraph_first_word": (
        ("num_paragraphs", "nth_paragraph", "first_word"),
        _nth_paragraph_first_word,
    ),
    "detectable_content:number_placeholders": (("num_placeholders",), _number_placeholders),
    "detectable_content:postscript": (("postscript_marker",), _postscript),
    "detectable_format:number_bullet_lists": (("num_bullets",), _number_bullets),
    "detectable_format:constrained_response": ((), _constrained_response),
    "detectable_format:number_highlighted_sections": (("num_highlights",), _highlighted_sections),
    "detectable_format:multiple_sections": (("section_spliter", "num_sections"), _multiple_sections),
    "detectable_format:json_format": ((), _json_format),
    "detectable_format:title": ((), _title),
    "combination:two_responses": ((), _two_responses),
    "combination:repeat_prompt": (("prompt_to_repeat",), _repeat_prompt),
    "startend:end_checker": (("end_phrase",), _end_checker),
    "startend:quotation": ((), _quotation),
    "change_case:capital_word_frequency": (
        ("capital_frequency", "capital_relation"),
        _capital_word_frequency,
    ),
    "change_case:english_capital": ((), _english_capital),
    "change_case:english_lowercase": ((), _english_lowercase),
    "punctuation:no_comma": ((), _no_comma),
}


def build_check(
    instruction_id: str, kwargs: Mapping[str, Any] | None, rng: random.Random | None = None
) -> tuple[Predicate, dict[str, Any]]:
    """The official test for one instruction with ``kwargs``, and any settings drawn at random.

    ``rng`` stands in for the official evaluator's unseeded draws (see ``_Settings``); unknown ids
    and settings the official evaluator refuses raise a ValueError.
    """
    if instruction_id not in BUILDERS:
        raise ValueError(
            f"unknown IFEval instruction id {instruction_id!r}; known: {', '.join(sorted(BUILDERS))}"
        )
    accepted, builder = BUILDERS[instruction_id]
    settings = _Settings(instruction_id, kwargs, accepted, rng or random.Random(0))
    return builder(settings), settings.drawn
