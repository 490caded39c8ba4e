"""IFEval checkers (one passing and one failing reply each), loose variants, the ifeval summary, and
parity mode against recorded outputs of VoiceBench's official evaluator."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from lalm.eval.scoring import ifeval_parity, score_subset
from lalm.eval.scoring.ifeval import check_instruction, loose_variants, score_ifeval
from lalm.eval.scoring.ifeval_checkers import CHECKERS
from lalm.eval.scoring.ifeval_text import (
    LANGUAGE_DETECTOR,
    capital_words,
    count_sentences,
    count_words,
    detect_language,
)

EN = "This is a plain English sentence about the weather and the sea."

# (instruction id, kwargs, a reply that follows it, a reply that does not)
CASES = [
    ("keywords:existence", {"keywords": ["ocean", "Blue"]}, "The blue OCEAN.", "The blue sea."),
    (
        "keywords:frequency",
        {"keyword": "cat", "frequency": 2, "relation": "at least"},
        "Cat and cat.",
        "One cat.",
    ),
    (
        "keywords:frequency",
        {"keyword": "cat", "frequency": 2, "relation": "less than"},
        "One cat.",
        "Cat, cat.",
    ),
    ("keywords:forbidden_words", {"forbidden_words": ["bad"]}, "A badge is fine.", "That is BAD."),
    (
        "keywords:letter_frequency",
        {"letter": "z", "let_frequency": 2, "let_relation": "at least"},
        "Zebra zoo.",
        "Zebra.",
    ),
    ("language:response_language", {"language": "es"}, "El perro es muy grande y la casa es roja.", EN),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": "less than"},
        "One. Two.",
        "One. Two. Three.",
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 2, "relation": "at least"},
        "Dr. Smith came. He left!",
        "Dr. Smith came home.",
    ),
    (
        "length_constraints:number_paragraphs",
        {"num_paragraphs": 2},
        "First part.\n***\nSecond part.",
        "First.\n***\n***\nSecond.",
    ),
    (
        "length_constraints:number_words",
        {"num_words": 5, "relation": "less than"},
        "Just four words here.",
        "These are five words now.",
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "because"},
        'I stayed.\n\n"Because, it rained.',
        "I stayed.\n\nSince it rained.",
    ),
    (
        "detectable_content:number_placeholders",
        {"num_placeholders": 2},
        "Dear [name], at [address].",
        "Dear [name].",
    ),
    (
        "detectable_content:postscript",
        {"postscript_marker": "P.S."},
        "Hello.\nP.S. See you.",
        "Hello. PS see you.",
    ),
    (
        "detectable_content:postscript",
        {"postscript_marker": "P.P.S"},
        "Hi.\np. p. s. later",
        "Hi.\nP.S. later",
    ),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* one\n- two", "* one\n* two\n* three"),
    ("detectable_format:constrained_response", {}, "My answer is maybe.", "Maybe."),
    (
        "detectable_format:number_highlighted_sections",
        {"num_highlights": 2},
        "*one* and **two**",
        "*one* and ** **",
    ),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "Section", "num_sections": 2},
        "Section 1\nIntro\nSection 2\nBody",
        "Section 1\nIntro only",
    ),
    ("detectable_format:json_format", {}, '```json\n{"a": 1}\n```', "{'a': 1}"),
    ("detectable_format:title", {}, "<<Ode to Joy>>\nLa la.", "<< >>\nLa la."),
    ("combination:two_responses", {}, "First take.\n******\nSecond take.", "Same.\n******\nSame."),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Say hi."}, "say hi. Hi!", "Hi! Say hi."),
    (
        "startend:end_checker",
        {"end_phrase": "Any other questions?"},
        '"Done. Any other questions?"',
        "Any other questions? Done.",
    ),
    ("startend:quotation", {}, '"All quoted."', '"Half quoted.'),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "at least"},
        "NASA and the U.S. agree.",
        "Only NASA here.",
    ),
    ("change_case:english_capital", {}, EN.upper(), EN),
    ("change_case:english_lowercase", {}, EN.lower(), EN),
    ("punctuation:no_comma", {}, "No commas here.", "One, two."),
]


@pytest.mark.parametrize(
    ("instruction_id", "kwargs", "passing", "failing"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_checker(instruction_id: str, kwargs: dict, passing: str, failing: str) -> None:
    assert check_instruction(instruction_id, kwargs, passing, loose=False)
    assert not check_instruction(instruction_id, kwargs, failing, loose=False)


def test_every_ifeval_instruction_id_has_a_checker_and_a_test() -> None:
    assert len(CHECKERS) == 25
    assert {c[0] for c in CASES} == set(CHECKERS)


def test_none_kwargs_are_dropped_and_unknown_ids_raise() -> None:
    kwargs = {
        "keywords": ["sea"],
        "num_words": None,
        "relation": None,
    }  # the HF data stores unused keys as None
    assert check_instruction("keywords:existence", kwargs, "The sea.", loose=False)
    with pytest.raises(ValueError, match="unknown IFEval instruction id"):
        check_instruction("keywords:rhymes", {}, "x", loose=False)


def test_loose_strips_first_last_lines_and_asterisks() -> None:
    assert loose_variants("a\nb\nc") == ["a\nb\nc", "b\nc", "a\nb", "b", "a\nb\nc", "b\nc", "a\nb", "b"]
    chatty = 'Sure! Here it is:\n"Wrapped in quotes."'
    assert not check_instruction("startend:quotation", {}, chatty, loose=False)
    assert check_instruction("startend:quotation", {}, chatty, loose=True)
    preamble = "Here is my answer:\nhello world, written in lowercase"
    assert not check_instruction("change_case:english_lowercase", {}, preamble, loose=False)
    assert check_instruction("change_case:english_lowercase", {}, preamble, loose=True)
    starred = "*one*, two"
    assert not check_instruction(
        "detectable_format:number_highlighted_sections", {"num_highlights": 1}, "no highlights", loose=True
    )
    assert check_instruction(
        "detectable_format:number_highlighted_sections", {"num_highlights": 1}, starred, loose=False
    )
    assert not check_instruction("punctuation:no_comma", {}, "", loose=True)  # an empty reply never passes


def test_ifeval_summary_is_the_mean_of_four_accuracies() -> None:
    items = [
        {
            "response": "hello there friend",
            "instruction_id_list": ["change_case:english_lowercase", "punctuation:no_comma"],
            "kwargs": [{}, {}],
        },
        {
            "response": 'Sure:\n"quoted"',
            "instruction_id_list": ["startend:quotation", "punctuation:no_comma"],
            "kwargs": [{}, {}],
        },
    ]
    results, summary = score_subset("ifeval", items)
    assert results[1]["strict"] == [False, True] and results[1]["loose"] == [True, True]
    assert summary["prompt_strict"] == 50.0 and summary["instruction_strict"] == 75.0
    assert summary["prompt_loose"] == 100.0 and summary["instruction_loose"] == 100.0
    assert summary["score"] == pytest.approx(81.25) and summary["language_detector"]


def test_text_measurements() -> None:
    assert count_words("Don't stop-me now, 42 times.") == 7
    assert count_sentences("Hello there. How are you? I am Dr. Smith. It is 3.5 m long! Yes") == 5
    assert count_sentences("") == 0
    assert capital_words("NASA and the U.S. are BIG. I agree.") == 4
    assert detect_language(EN) == "en" and detect_language("Привет, как дела? Это хорошо.") == "ru"
    assert detect_language("12345") is None


# --- parity mode: VoiceBench's official evaluator, item by item ---------------------------------

PARITY_REASON = ifeval_parity.unavailable_reason()
needs_parity = pytest.mark.skipif(
    PARITY_REASON is not None,
    reason=f"parity mode unavailable here ({PARITY_REASON}); e.g. NLTK_DATA=<dir holding tokenizers/punkt_tab>",
)
FIXTURE = Path(__file__).parent / "data" / "parity" / "voicebench_official.jsonl"


def _item(response: str, instruction_id: str, kwargs: dict, *, prompt: str = "p", id: str = "a") -> dict:
    return {
        "id": id,
        "prompt": prompt,
        "response": response,
        "instruction_id_list": [instruction_id],
        "kwargs": [kwargs],
    }


def _parity(response: str, instruction_id: str, kwargs: dict) -> tuple[bool, bool]:
    (result,), _ = score_ifeval([_item(response, instruction_id, kwargs)], mode="parity")
    return result["strict"][0], result["loose"][0]


def _strict_mode(response: str, instruction_id: str, kwargs: dict) -> tuple[bool, bool]:
    (result,), _ = score_ifeval([_item(response, instruction_id, kwargs)], mode="strict")
    return result["strict"][0], result["loose"][0]


# (instruction id, kwargs, reply, official strict, official loose): outputs of VoiceBench's evaluator
# (commit 5338154, nltk 3.10.4 punkt_tab, langdetect 1.0.9) on these replies, recorded once.
OFFICIAL_CASES = [
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": "less than"},
        "The U.S. is big. Dr. Smith agrees.",
        True,
        True,
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": "at least"},
        "It costs 3.5 dollars. Wait... what? Yes!",
        True,
        True,
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 2, "relation": "less than"},
        "Mr. Jones went to Washington D.C. yesterday.",
        True,
        True,
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 4, "relation": "at least"},
        "e.g. this. i.e. that.",
        True,
        True,
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 6, "capital_relation": "at least"},
        "I'M HERE. DON'T GO.",
        True,
        True,
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "less than"},
        "A STATE-OF-THE-ART plan.",
        False,
        False,
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "at least"},
        "CAN'T stop.",
        True,
        True,
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 1, "capital_relation": "at least"},
        "The USA's plan.",
        True,
        True,
    ),
    ("keywords:existence", {"keywords": ["e.g"]}, "I like eggs.", True, True),
    (
        "keywords:frequency",
        {"keyword": "cat", "frequency": 2, "relation": "at least"},
        "Concatenate the cat.",
        True,
        True,
    ),
    ("keywords:forbidden_words", {"forbidden_words": ["cat"]}, "Concatenate.", True, True),
    (
        "keywords:letter_frequency",
        {"letter": "Z", "let_frequency": 2, "let_relation": "at least"},
        "Zebra zoo.",
        True,
        True,
    ),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"}, "Hi.\nP. P. S later", True, True),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hi. ps: later", False, False),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "SECTION", "num_sections": 2},
        "SECTION1 a SECTION 2 b",
        True,
        True,
    ),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "Section", "num_sections": 2},
        "section 1 a section 2 b",
        False,
        False,
    ),
    (
        "detectable_format:number_bullet_lists",
        {"num_bullets": 2},
        "**Intro**\n* one\n- two\n---",
        False,
        True,
    ),
    (
        "detectable_format:number_highlighted_sections",
        {"num_highlights": 3},
        "**bold** and *it*",
        False,
        False,
    ),
    ("detectable_format:json_format", {}, '```JSON\n{"a": [1, 2]}\n```', True, True),
    ("detectable_format:json_format", {}, 'Here:\n```json\n{"a": 1}\n```', False, True),
    ("detectable_format:title", {}, "<<>> <<A>>", True, True),
    ("combination:two_responses", {}, "******\nOne.\n******\nTwo.\n******", True, True),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Say hi."}, "  SAY HI. hi", True, True),
    ("startend:end_checker", {"end_phrase": "Peace!"}, 'All done. peace!"  ', True, True),
    ("startend:quotation", {}, 'Sure:\n"quoted"\nThanks', False, True),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "because"},
        "\n\nIntro.\n\n\"'Because it rained.\n\n",
        False,
        False,
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "because"},
        "Intro.\n\n'\"Because it rained.",
        True,
        True,
    ),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "***\nOne.\n***\nTwo.\n***", True, True),
    (
        "length_constraints:number_words",
        {"num_words": 5, "relation": "less than"},
        "Don't stop-me now.",
        False,
        False,
    ),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "[a][b]", True, True),
    ("detectable_format:constrained_response", {}, "I think: My answer is no.", True, True),
    (
        "language:response_language",
        {"language": "es"},
        "El perro es muy grande y la casa es roja.",
        True,
        True,
    ),
    ("language:response_language", {"language": "de"}, "12345 !!!", True, True),
    ("change_case:english_capital", {}, "EL PERRO ES MUY GRANDE Y LA CASA ES ROJA.", False, False),
    ("change_case:english_lowercase", {}, "**note**\nall lower case here, friend.", True, True),
    ("punctuation:no_comma", {}, "<2>No commas here", True, True),
    ("punctuation:no_comma", {}, "<|user|>", False, False),
    ("startend:quotation", {}, '<3> "Quoted." <|user|>', True, True),
]


def test_mode_is_checked_and_strict_is_the_default() -> None:
    with pytest.raises(ValueError, match="ifeval mode must be one of"):
        score_ifeval([], mode="official")
    results, summary = score_ifeval([_item("hello, world", "punctuation:no_comma", {})])
    assert summary["mode"] == "strict" and results[0]["score"] == 0 and results[0]["strict"] == [False]
    assert summary["sentence_splitter"] and summary["language_detector"] == LANGUAGE_DETECTOR


def test_parity_without_punkt_data_reports_unavailable_and_strict_still_scores(monkeypatch) -> None:
    nltk = pytest.importorskip("nltk")
    monkeypatch.setattr(nltk.data, "path", [])  # nowhere to find punkt_tab
    items = [
        _item(
            "One. Two.", "length_constraints:number_sentences", {"num_sentences": 3, "relation": "less than"}
        )
    ]
    results, summary = score_ifeval(items, mode="parity")
    assert summary["score"] is None and summary["mode"] == "parity"
    assert summary["status"] == f"unavailable: {ifeval_parity.PUNKT_MISSING}"
    assert "punkt_tab" in summary["status"] and results[0]["status"] == summary["status"]
    assert "strict" not in results[0]  # no heuristic result passed off as parity
    results, summary = score_ifeval(items, mode="strict")  # the kit's own sentence rule needs no data
    assert results[0]["strict"] == [True] and summary["score"] == 100.0


def test_parity_without_langdetect_reports_unavailable(monkeypatch) -> None:
    pytest.importorskip("nltk")
    monkeypatch.setattr(ifeval_parity, "langdetect", None)
    if ifeval_parity.unavailable_reason() == ifeval_parity.PUNKT_MISSING:
        pytest.skip("punkt_tab data absent, so that is reported first")
    _, summary = score_ifeval(
        [_item("Hola.", "language:response_language", {"language": "es"})], mode="parity"
    )
    assert summary["score"] is None and "langdetect is not installed" in summary["status"]


@needs_parity
@pytest.mark.parametrize(
    ("instruction_id", "kwargs", "reply", "strict", "loose"),
    OFFICIAL_CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(OFFICIAL_CASES)],
)
def test_parity_matches_recorded_official_outputs(
    instruction_id: str, kwargs: dict, reply: str, strict: bool, loose: bool
) -> None:
    assert _parity(reply, instruction_id, kwargs) == (strict, loose)


@needs_parity
def test_parity_differs_from_strict_mode_where_the_official_evaluator_does() -> None:
    sentences = {"num_sentences": 3, "relation": "less than"}
    # punkt keeps "U.S." and "Dr." inside their sentences (2); the kit's rule ends one at "U.S." (3)
    assert _parity(
        "The U.S. is big. Dr. Smith agrees.", "length_constraints:number_sentences", sentences
    ) == (True, True)
    assert _strict_mode(
        "The U.S. is big. Dr. Smith agrees.", "length_constraints:number_sentences", sentences
    ) == (
        False,
        False,
    )
    capitals = {"capital_frequency": 6, "capital_relation": "at least"}
    assert _parity("I'M HERE. DON'T GO.", "change_case:capital_word_frequency", capitals) == (True, True)
    assert _strict_mode("I'M HERE. DON'T GO.", "change_case:capital_word_frequency", capitals) == (
        False,
        False,
    )
    # keywords are regular expressions for the official evaluator ("." matches any character)
    assert _parity("I like eggs.", "keywords:existence", {"keywords": ["e.g"]}) == (True, True)
    assert _strict_mode("I like eggs.", "keywords:existence", {"keywords": ["e.g"]}) == (False, False)


@needs_parity
def test_parity_measurements() -> None:
    count = ifeval_parity.punkt_sentence_count
    assert count("The U.S. is big. Dr. Smith agrees.") == 2
    assert count("It costs 3.5 dollars. Wait... what? Yes!") == 3
    assert count("Wait... what?") == 1
    assert count("Hello there. How are you? I am Dr. Smith. It is 3.5 m long! Yes") == 5
    assert count("1. First\n2. Second\n3. Third") == 4
    capitals = ifeval_parity.word_tokenize_capitals
    assert capitals("NASA and the U.S. agree.") == 2  # "U.S." is one token
    assert capitals("A STATE-OF-THE-ART plan.") == 2  # a hyphenated word is one token
    assert capitals("I'M HERE. DON'T GO.") == 6  # I 'M HERE DO N'T GO
    assert capitals("The USA's plan.") == 1 and capitals("AI/ML") == 1
    detect = ifeval_parity.detected_language
    assert detect("El perro es muy grande y la casa es roja.") == "es" and detect(EN) == "en"
    assert detect("12345 !!!") is None  # nothing to detect: the instruction counts as followed


def test_chat_tokens_are_stripped_as_the_official_evaluator_does() -> None:
    clean = ifeval_parity.official_reply
    assert clean("<1>  Hello. <|user|>") == "Hello."
    assert clean("<3>\n<|user|>") == ""
    assert clean(" <2>Hello ") == " <2>Hello "  # not at the very start: untouched, not even stripped
    assert clean("Hello<|user|> ") == "Hello<|user|> "
    assert clean("<4>Hello") == "<4>Hello"


@needs_parity
def test_parity_scores_the_cleaned_reply() -> None:
    assert _parity('<3> "Quoted." <|user|>', "startend:quotation", {}) == (True, True)
    assert _strict_mode('<3> "Quoted." <|user|>', "startend:quotation", {}) == (False, False)
    assert _parity("<|user|>", "punctuation:no_comma", {}) == (False, False)  # empty once cleaned
    assert _strict_mode("<|user|>", "punctuation:no_comma", {}) == (True, True)
    (result,), summary = score_ifeval([_item("<1>fine", "punctuation:no_comma", {})], mode="parity")
    assert result["chat_tokens_stripped"] and summary["chat_tokens_stripped"] == 1


@needs_parity
def test_parity_scores_items_sharing_a_prompt_with_the_last_reply() -> None:
    items = [
        _item("no commas here", "punctuation:no_comma", {}, prompt="same", id="first"),
        _item("other", "punctuation:no_comma", {}, prompt="elsewhere", id="middle"),
        _item("one, two", "punctuation:no_comma", {}, prompt="same", id="last"),
    ]
    results, summary = score_ifeval(items, mode="parity")
    assert [r["strict"] for r in results] == [[False], [True], [False]]
    assert results[0]["scored_reply_of"] == "last" and "scored_reply_of" not in results[2]
    assert summary["shared_prompt_items"] == 1 and summary["prompt_strict"] == pytest.approx(100 / 3)
    results, _ = score_ifeval(items, mode="strict")  # strict mode scores each item's own reply
    assert [r["strict"] for r in results] == [[True], [True], [False]]


@needs_parity
def test_parity_drops_every_falsy_kwarg() -> None:
    # unused keys stored as 0, "", [] or False (not only None) are dropped before building
    kwargs = {
        "keywords": ["sea"],
        "num_words": 0,
        "relation": "",
        "forbidden_words": [],
        "letter": False,
        "x": None,
    }
    assert _parity("The sea.", "keywords:existence", kwargs) == (True, True)
    assert _parity("The lake.", "keywords:existence", kwargs) == (False, False)
    with pytest.raises(ValueError, match="does not accept kwargs"):
        _parity("The sea.", "keywords:existence", {"keywords": ["sea"], "num_words": 3})


@needs_parity
def test_parity_draws_seeded_settings_where_the_official_evaluator_draws_at_random() -> None:
    # IFEval asks for the "letter" "#": not an ASCII letter, so the official builder picks a random one
    item = _item(
        "### tags ###",
        "keywords:letter_frequency",
        {"letter": "#", "let_frequency": 4, "let_relation": "at least"},
    )
    (first,), summary = score_ifeval([item], mode="parity", seed=3)
    (again,), _ = score_ifeval([item], mode="parity", seed=3)
    assert first == again and summary["random_settings_items"] == 1
    (drawn,) = first["random_settings"]
    assert drawn["instruction"] == 0 and set(drawn) == {"instruction", "strict", "loose"}
    assert drawn["strict"]["letter"] in "abcdefghijklmnopqrstuvwxyz" and drawn["loose"]["letter"].islower()
    # strict and loose passes draw separately, as the official evaluator builds the instruction twice
    letters = {
        tuple(
            score_ifeval([item], mode="parity", seed=s)[0][0]["random_settings"][0][k]["letter"]
            for k in ("strict", "loose")
        )
        for s in range(20)
    }
    assert any(a != b for a, b in letters)
    (zero,), _ = score_ifeval(
        [_item("[a]", "detectable_content:number_placeholders", {"num_placeholders": 0})], mode="parity"
    )
    assert 1 <= zero["random_settings"][0]["strict"]["num_placeholders"] <= 4
    with pytest.raises(ValueError, match="word list"):
        _parity("x", "keywords:existence", {"keywords": []})
    with pytest.raises(ValueError, match="relation must be one of"):
        _parity("x", "length_constraints:number_words", {"num_words": 3, "relation": "at most"})
    with pytest.raises(ValueError, match="no name for language"):
        _parity("x", "language:response_language", {"language": "xx"})


@needs_parity
def test_parity_summary_records_what_ran() -> None:
    items = [
        _item("hello there friend", "change_case:english_lowercase", {}),
        _item("Hi, you", "punctuation:no_comma", {}, prompt="q"),
    ]
    results, summary = score_ifeval(items, mode="parity")
    assert [r["score"] for r in results] == [1, 0]
    assert summary["prompt_strict"] == 50.0 and summary["score"] == pytest.approx(50.0)
    assert summary["mode"] == "parity" and summary["language_detector"].startswith("langdetect")
    assert "punkt_tab" in summary["sentence_splitter"] and "word_tokenize" in summary["word_tokenizer"]
    assert random.Random(0).random() == random.Random(0).random()  # parity leaves the global RNG alone


def _fixture_rows(path: Path) -> list[dict]:
    if not path.exists():
        pytest.skip(f"{path} not produced yet")
    return [row for row in map(json.loads, path.read_text().splitlines()) if row.get("subset") == "ifeval"]


@needs_parity
def test_parity_agrees_with_the_official_fixture() -> None:
    rows = _fixture_rows(FIXTURE)
    if not rows:
        pytest.skip(f"{FIXTURE} has no ifeval rows")
    # One batch, as the official evaluator scores it (items sharing a prompt take the last reply).
    # Rows whose official result depended on its unseeded draws were left out of the fixture, so the
    # seeded draws must agree too.
    results, summary = score_ifeval([row["item"] for row in rows], mode="parity")
    disagreements = [
        (result["id"], result["strict"], row["official"]["strict"], result["loose"], row["official"]["loose"])
        for row, result in zip(rows, results)
        if (result["strict"], result["loose"]) != (row["official"]["strict"], row["official"]["loose"])
    ]
    assert disagreements == []
    assert summary["n"] == len(rows)
