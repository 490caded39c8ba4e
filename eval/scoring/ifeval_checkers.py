"""The 25 IFEval instruction checkers of strict mode, keyed by IFEval's instruction ids.

Each checker is ``check(response, **kwargs) -> bool`` with the keyword arguments IFEval's data
stores for that id (its ``kwargs`` entries, None values dropped). The rules follow Google's
``instruction_following_eval/instructions.py``; where that code uses nltk or langdetect, the
measurements come from ``ifeval_text`` (see there for what is approximated). Keywords are matched
literally, where IFEval passes them to ``re`` unescaped; no IFEval keyword contains a regex
metacharacter, so the results agree. Parity mode's checkers, which copy the official evaluator's
behaviour exactly, are in ``ifeval_parity``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

from .ifeval_text import capital_words, count_sentences, count_words, detect_language

RELATIONS = ("less than", "at least")
CONSTRAINED_RESPONSES = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


def _compare(actual: int, relation: str, threshold: int) -> bool:
    if relation == "less than":
        return actual < threshold
    if relation == "at least":
        return actual >= threshold
    raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")


def _in_language(response: str, language: str) -> bool:
    detected = detect_language(response)
    return detected is None or detected == language


def keywords_existence(response: str, *, keywords: Sequence[str]) -> bool:
    return all(re.search(re.escape(k), response, re.IGNORECASE) for k in keywords)


def keywords_frequency(response: str, *, keyword: str, frequency: int, relation: str) -> bool:
    return _compare(len(re.findall(re.escape(keyword.strip()), response, re.IGNORECASE)), relation, frequency)


def keywords_forbidden_words(response: str, *, forbidden_words: Sequence[str]) -> bool:
    return not any(re.search(rf"\b{re.escape(w)}\b", response, re.IGNORECASE) for w in forbidden_words)


def keywords_letter_frequency(response: str, *, letter: str, let_frequency: int, let_relation: str) -> bool:
    return _compare(response.lower().count(letter.strip().lower()), let_relation, let_frequency)


def response_language(response: str, *, language: str) -> bool:
    return _in_language(response, language)


def number_sentences(response: str, *, num_sentences: int, relation: str) -> bool:
    return _compare(count_sentences(response), relation, num_sentences)


def number_paragraphs(response: str, *, num_paragraphs: int) -> bool:
    """Paragraphs split by the markdown divider ``***``; an empty one inside the text fails."""
    paragraphs = re.split(r"\s?\*\*\*\s?", response)
    inner_empty = any(not p.strip() for p in paragraphs[1:-1])
    count = sum(1 for p in paragraphs if p.strip())
    return not inner_empty and count == num_paragraphs


def number_words(response: str, *, num_words: int, relation: str) -> bool:
    return _compare(count_words(response), relation, num_words)


def nth_paragraph_first_word(
    response: str, *, num_paragraphs: int, nth_paragraph: int, first_word: str
) -> bool:
    """Paragraphs split by blank lines; the nth (1-based, counted over the raw split as IFEval
    does) must start with ``first_word``, ignoring case and trailing punctuation."""
    paragraphs = response.split("\n\n")
    count = sum(1 for p in paragraphs if p.strip())
    if nth_paragraph > count or not paragraphs[nth_paragraph - 1].strip():
        return False
    word = paragraphs[nth_paragraph - 1].split()[0].lstrip("'").lstrip('"')
    word = re.split(r"[.,?!'\"]", word)[0].lower()
    return count == num_paragraphs and word == first_word.lower()


def number_placeholders(response: str, *, num_placeholders: int) -> bool:
    return len(re.findall(r"\[.*?\]", response)) >= num_placeholders


def postscript(response: str, *, postscript_marker: str) -> bool:
    marker = postscript_marker.strip()
    pattern = {"P.P.S": r"\s*p\.\s?p\.\s?s.*$", "P.S.": r"\s*p\.\s?s\..*$"}.get(
        marker, rf"\s*{re.escape(marker.lower())}.*$"
    )
    return bool(re.findall(pattern, response.lower(), re.MULTILINE))


def number_bullet_lists(response: str, *, num_bullets: int) -> bool:
    stars = re.findall(r"^\s*\*[^\*].*$", response, re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", response, re.MULTILINE)
    return len(stars) + len(dashes) == num_bullets


def constrained_response(response: str) -> bool:
    return any(option in response.strip() for option in CONSTRAINED_RESPONSES)


def number_highlighted_sections(response: str, *, num_highlights: int) -> bool:
    single = [h for h in re.findall(r"\*[^\n\*]*\*", response) if h.strip("*").strip()]
    double = [h for h in re.findall(r"\*\*[^\n\*]*\*\*", response) if h[2:-2].strip()]
    return len(single) + len(double) >= num_highlights


def multiple_sections(response: str, *, section_spliter: str, num_sections: int) -> bool:
    sections = re.split(rf"\s?{re.escape(section_spliter.strip())}\s?\d+\s?", response)
    return len(sections) - 1 >= num_sections


def json_format(response: str) -> bool:
    text = response.strip()
    for prefix in ("```json", "```Json", "```JSON", "```"):
        text = text.removeprefix(prefix)
    try:
        json.loads(text.removesuffix("```").strip())
    except (ValueError, RecursionError):  # a reply nested too deeply to parse is not JSON either
        return False
    return True


def title(response: str) -> bool:
    return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", response))


def two_responses(response: str) -> bool:
    parts = response.split("******")
    if any(not p.strip() for p in parts[1:-1]):
        return False
    valid = [p.strip() for p in parts if p.strip()]
    return len(valid) == 2 and valid[0] != valid[1]


def repeat_prompt(response: str, *, prompt_to_repeat: str) -> bool:
    return response.strip().lower().startswith(prompt_to_repeat.strip().lower())


def end_checker(response: str, *, end_phrase: str) -> bool:
    return response.strip().strip('"').lower().endswith(end_phrase.strip().lower())


def capital_word_frequency(response: str, *, capital_frequency: int, capital_relation: str) -> bool:
    return _compare(capital_words(response), capital_relation, capital_frequency)


def english_capital(response: str) -> bool:
    return response.isupper() and _in_language(response, "en")


def english_lowercase(response: str) -> bool:
    return response.islower() and _in_language(response, "en")


def no_comma(response: str) -> bool:
    return "," not in response


def quotation(response: str) -> bool:
    text = response.strip()
    return len(text) > 1 and text[0] == '"' and text[-1] == '"'


CHECKERS: dict[str, Callable[..., bool]] = {
    "keywords:existence": keywords_existence,
    "keywords:frequency": keywords_frequency,
    "keywords:forbidden_words": keywords_forbidden_words,
    "keywords:letter_frequency": keywords_letter_frequency,
    "language:response_language": response_language,
    "length_constraints:number_sentences": number_sentences,
    "length_constraints:number_paragraphs": number_paragraphs,
    "length_constraints:number_words": number_words,
    "length_constraints:nth_paragraph_first_word": nth_paragraph_first_word,
    "detectable_content:number_placeholders": number_placeholders,
    "detectable_content:postscript": postscript,
    "detectable_format:number_bullet_lists": number_bullet_lists,
    "detectable_format:constrained_response": constrained_response,
    "detectable_format:number_highlighted_sections": number_highlighted_sections,
    "detectable_format:multiple_sections": multiple_sections,
    "detectable_format:json_format": json_format,
    "detectable_format:title": title,
    "combination:two_responses": two_responses,
    "combination:repeat_prompt": repeat_prompt,
    "startend:end_checker": end_checker,
    "startend:quotation": quotation,
    "change_case:capital_word_frequency": capital_word_frequency,
    "change_case:english_capital": english_capital,
    "change_case:english_lowercase": english_lowercase,
    "punctuation:no_comma": no_comma,
}
