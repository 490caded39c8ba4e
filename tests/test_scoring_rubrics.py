"""Parsing judge replies (good, odd, unparsable) and the prompts the judges are sent."""

from __future__ import annotations

import pytest

from lalm.eval.scoring.rubrics import (
    airbench_chat_messages,
    open_messages,
    parse_rating,
    parse_score_pair,
    parse_yes_no,
    qa_messages,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("4", 4.0),
        (" 5\n", 5.0),
        ("**3**", 3.0),
        ("4.", 4.0),
        ("4.5", 4.5),
        ("Rating: [[2]]", 2.0),
        ("Score: 4", 4.0),
        ("I'd give it a rating of 3 because it rambles.", 3.0),
        ("4/5 - concise and correct", 4.0),
        ("3 out of 5", 3.0),
        ("2 points", 2.0),
        ("The response deserves a 5", 5.0),
        ("7", None),  # out of range: unparsable, not clipped
        ("Score: 0", None),
        ("Great answer!", None),
        ("Between 3 and 4.", None),  # two candidates: ambiguous
        ("", None),
    ],
)
def test_parse_rating(raw: str, expected: float | None) -> None:
    assert parse_rating(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Yes", True),
        ("yes.", True),
        ("No", False),
        ("**No**, the candidate names a different city.", False),
        ("The answer is yes", True),
        ("I know it", None),  # "know" is not "no"
        ("The candidate answer is partially correct.", None),
        ("Yes and no.", True),  # first word decides
        ("Hard to say: yes or no?", None),
    ],
)
def test_parse_yes_no(raw: str, expected: bool | None) -> None:
    assert parse_yes_no(raw) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("8 7", [8.0, 7.0]),
        ("8, 7", [8.0, 7.0]),
        ("9\n6", [9.0, 6.0]),
        ("8 7\nAssistant 1 is more complete.", [8.0, 7.0]),
        ("Assistant 1: 8\nAssistant 2: 6.5", [8.0, 6.5]),
        ("11 7", None),
        ("8", None),
        ("Both are good.", None),
    ],
)
def test_parse_score_pair(raw: str, expected: list[float] | None) -> None:
    assert parse_score_pair(raw) == expected


def test_prompts_carry_the_item_text_and_the_benchmark_wording() -> None:
    system, user = open_messages("Tell me a joke {please}", "Why did the {chicken} cross?")
    assert system["role"] == "system" and "helpful assistant" in system["content"]
    assert "### [Instruction]: Tell me a joke {please}" in user["content"]
    assert "### [Response]: Why did the {chicken} cross?" in user["content"]
    assert "scale of 1 to 5" in user["content"]
    qa = qa_messages("Capital?", "Paris", "Lyon")[1]["content"]
    assert "### Reference answer\nParis" in qa and qa.endswith(
        'single "Yes" or "No". Do not output anything else.'
    )
    (chat,) = airbench_chat_messages("dog barking", "What?", "A dog.", "A cat.")
    assert chat["role"] == "user"
    assert chat["content"].index("A dog.") < chat["content"].index("A cat.")
    assert "[Detailed Audio Description]\ndog barking\n[Question]\nWhat?" in chat["content"]
