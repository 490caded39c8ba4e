"""Judge prompts (VoiceBench's and AIR-Bench's wording) and parsers for the judges' replies.

The prompt texts are the benchmarks' own, kept word for word because leaderboard comparability
depends on them: VoiceBench's ``api_judge.py`` open-ended 1-5 rubric and its reference Yes/No
question (both sent with its system message), and AIR-Bench's ``score_chat.py`` pairwise 1-10
prompt (sent as the only, user, message).

A parser returns the parsed value or None. None means "unparsable" and is recorded with the raw
reply; it is never turned into a default score. Parsers accept the odd formats judges drift into
("**4**", "Score: 4", "[[4]]", "4/5", "Yes.") but refuse anything ambiguous or out of range.
"""

from __future__ import annotations

import re

VOICEBENCH_SYSTEM = "You are a helpful assistant who tries to help answer the user's question."

VOICEBENCH_OPEN_PROMPT = """
I need your help to evaluate the performance of several models in the speech interaction scenario. The models will receive a speech input from the user, which they need to understand and respond to with a speech output.
Your task is to rate the model’s responses based on the provided user input transcription [Instruction] and the model’s output transcription [Response].

Please evaluate the response on a scale of 1 to 5:
1 point: The response is largely irrelevant, incorrect, or fails to address the user’s query. It may be off-topic or provide incorrect information.
2 points: The response is somewhat relevant but lacks accuracy or completeness. It may only partially answer the user’s question or include extraneous information.
3 points: The response is relevant and mostly accurate, but it may lack conciseness or include unnecessary details that don’t contribute to the main point.
4 points: The response is relevant, accurate, and concise, providing a clear answer to the user’s question without unnecessary elaboration.
5 points: The response is exceptionally relevant, accurate, and to the point. It directly addresses the user’s query in a highly effective and efficient manner, providing exactly the information needed.

Below are the transcription of user’s instruction and models’ response:
### [Instruction]: {prompt}
### [Response]: {response}

After evaluating, please output the score only without anything else.
You don’t need to provide any explanations.
"""

VOICEBENCH_QA_PROMPT = """### Question
{prompt}

### Reference answer
{reference}

### Candidate answer
{response}

Is the candidate answer correct based on the question and reference answer?{space}
Please only output a single "Yes" or "No". Do not output anything else."""

AIRBENCH_CHAT_PROMPT = (
    "You are a helpful and precise assistant for checking the quality of the answer.\n"
    "[Detailed Audio Description]\n{audio}\n[Question]\n{question}\n"
    "[The Start of Assistant 1s Answer]\n{answer_1}\n[The End of Assistant 1s Answer]\n"
    "[The Start of Assistant 2s Answer]\n{answer_2}\n[The End of Assistant 2s Answer]\n[System]\n"
    "We would like to request your feedback on the performance of two AI assistants in response to the user "
    "question and audio description displayed above. AI assistants are provided with detailed audio "
    "descriptions and questions.\nPlease rate the helpfulness, relevance, accuracy, and comprehensiveness of "
    "their responses. Each assistant receives an overall score on a scale of 1 to 10, where a higher score "
    "indicates better overall performance. Please output a single line containing only two values indicating "
    "the scores for Assistant 1 and 2, respectively. The two scores are separated by a space."
)

AIRBENCH_ALIGN_PROMPT = (
    'There is a question "QUESTION", and one response is "ANSWER". Among the following choices, which option '
    "best matches this response? You may only response with the letter of the option. If the letter of an "
    "option has already appeared in the Answer, then simply return that letter. If there are no matching "
    "options, then choose one at random. The following lines are the options."
)
AIRBENCH_ALIGN_REMINDER = (
    "To reiterate, the response you provide to me must be a single letter, either A, B, C, or D."
)

Messages = list[dict[str, str]]


def open_messages(prompt: str, response: str) -> Messages:
    """VoiceBench's 1-5 rating request for an open-ended reply."""
    return [
        {"role": "system", "content": VOICEBENCH_SYSTEM},
        {"role": "user", "content": VOICEBENCH_OPEN_PROMPT.format(prompt=prompt, response=response)},
    ]


def qa_messages(prompt: str, reference: str, response: str) -> Messages:
    """VoiceBench's Yes/No request: does the reply match the reference answer?"""
    # The official prompt has a space before that line break; ``{space}`` keeps it out of reach of
    # editors that strip trailing whitespace.
    content = VOICEBENCH_QA_PROMPT.format(prompt=prompt, reference=reference, response=response, space=" ")
    return [{"role": "system", "content": VOICEBENCH_SYSTEM}, {"role": "user", "content": content}]


def airbench_chat_messages(audio: str, question: str, answer_1: str, answer_2: str) -> Messages:
    """AIR-Bench's pairwise 1-10 request; the caller decides which answer goes first."""
    content = AIRBENCH_CHAT_PROMPT.format(
        audio=audio, question=question, answer_1=answer_1, answer_2=answer_2
    )
    return [{"role": "user", "content": content}]


def airbench_align_messages(question: str, response: str, choices: list[str]) -> Messages:
    """AIR-Bench's judge-to-letter request (``align_in_foundation.py``): which option the free-form
    reply means. As there, ANSWER is filled before QUESTION, and only A and B are listed unless
    both C and D exist."""
    prompt = AIRBENCH_ALIGN_PROMPT.replace("ANSWER", response).replace("QUESTION", question)
    shown = choices if len(choices) >= 4 else choices[:2]
    options = "".join(f"\n{letter}. {text}" for letter, text in zip("ABCD", shown))
    return [{"role": "user", "content": f"{prompt}{options}\n{AIRBENCH_ALIGN_REMINDER}"}]


_NUMBER = r"(\d+(?:\.\d+)?)"


def parse_rating(raw: str, low: float = 1, high: float = 5) -> float | None:
    """A single rating in [low, high] from a judge reply, else None.

    Tried in order: the whole reply is a number ("4", "**4**", "4."); "[[4]]"; "Score: 4" /
    "rating of 4"; "4/5" or "4 out of 5"; "4 points"; and last, a reply holding exactly one number.
    The first form found decides: an out-of-range number there is unparsable, not clipped.
    """
    text = raw.strip()
    forms = (
        rf"^\W*{_NUMBER}\W*$",
        rf"\[\[{_NUMBER}\]\]",
        rf"\b(?:score|rating)\b\W*(?:is|of)?\W*{_NUMBER}",
        rf"{_NUMBER}\s*(?:/|out of)\s*{high:g}\b",
        rf"{_NUMBER}\s*points?\b",
    )
    for form in forms:
        match = re.search(form, text, re.IGNORECASE)
        if match:
            value = float(match.group(1))
            return value if low <= value <= high else None
    numbers = set(re.findall(_NUMBER, text))
    if len(numbers) == 1:
        value = float(numbers.pop())
        return value if low <= value <= high else None
    return None


def parse_yes_no(raw: str) -> bool | None:
    """True for Yes, False for No: the reply's first word, else its only yes/no word; else None."""
    words = re.findall(r"[a-z]+", raw.lower())
    if words and words[0] in ("yes", "no"):
        return words[0] == "yes"
    found = {w for w in words if w in ("yes", "no")}
    return found.pop() == "yes" if len(found) == 1 else None


def parse_score_pair(raw: str, high: float = 10) -> list[float] | None:
    """The two scores (Assistant 1, Assistant 2), each in [1, high], from a pairwise judge reply.

    Accepted: the reply, or one of its lines, being two numbers ("8 7", "8, 7"), or both
    assistants labelled ("Assistant 1: 8 ... Assistant 2: 7"). Anything else, or a score out of
    range, is None.
    """
    text = raw.strip()
    pair = re.compile(rf"\W*{_NUMBER}[\s,;/]+{_NUMBER}\W*")
    match = next((m for line in [text, *text.splitlines()] if (m := pair.fullmatch(line.strip()))), None)
    if match is None:
        labelled = [re.search(rf"assistant\s*{i}\b\W*{_NUMBER}", text, re.IGNORECASE) for i in (1, 2)]
        if not all(labelled):
            return None
        scores = [float(m.group(1)) for m in labelled if m]
    else:
        scores = [float(match.group(1)), float(match.group(2))]
    return scores if all(1 <= s <= high for s in scores) else None
