"""VoiceBench's ifeval set: IFEval's verifiable instructions, scored strict and loose.

Strict checks the reply as given. Loose, as IFEval defines it, counts an instruction as followed
when any of eight variants passes: the reply, it with its first line removed, with its last line
removed, with both removed, and each of those four with every ``*`` deleted, so a markdown wrapper
or a chatty first line does not fail a format check. An empty variant never passes. Prompt-level
accuracy needs every instruction of a prompt followed; instruction-level counts instructions. The
set's score is the mean of the four accuracies (prompt/instruction x strict/loose).

Two modes. ``strict`` (the default) scores with the kit's own checkers (``ifeval_checkers``), which
need no nltk data. ``parity`` reproduces VoiceBench's official evaluator item by item, quirks
included (chat-token clean-up, replies looked up by prompt, falsy kwargs dropped, unescaped
regexes, nltk punkt and ``word_tokenize``); see ``ifeval_parity``. Both report the same fields;
parity items scored with another item's reply name it in ``scored_reply_of``.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Mapping, Sequence
from typing import Any

from . import ifeval_parity
from .common import Item, ScoreResult, get_field, item_id, mean, percent
from .ifeval_checkers import CHECKERS
from .ifeval_text import LANGUAGE_DETECTOR, SENTENCE_SPLITTER, WORD_TOKENIZER

MODES = ("strict", "parity")


def loose_variants(response: str) -> list[str]:
    """The eight reply variants IFEval's loose evaluation tries, the reply itself first."""
    lines = response.split("\n")
    trimmed = [
        response,
        "\n".join(lines[1:]).strip(),
        "\n".join(lines[:-1]).strip(),
        "\n".join(lines[1:-1]).strip(),
    ]
    return trimmed + [t.replace("*", "") for t in trimmed]


#: A checker's keyword annotation -> (what a value must be, the test), so a wrong type is a data error.
_KWARG_TYPES = {
    "int": ("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "str": ("a string", lambda v: isinstance(v, str)),
    "Sequence[str]": ("a list of strings", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
}


def instruction_problem(instruction_id: Any, kwargs: Any, complete: bool = True) -> str | None:
    """Why one instruction cannot be checked (an unknown id; kwargs its checker does not take, takes as
    another type, or with ``complete``, lacks: parity mode draws missing ones at random, as the official
    builders do), else None. Null kwargs count as absent, as in VoiceBench's data."""
    if not isinstance(instruction_id, str) or instruction_id not in CHECKERS:
        return f"unknown IFEval instruction id {instruction_id!r}; known: {', '.join(sorted(CHECKERS))}"
    if kwargs is not None and not isinstance(kwargs, Mapping):
        return f"{instruction_id}: kwargs must be an object, not {kwargs!r}"
    params = {n: p for n, p in inspect.signature(CHECKERS[instruction_id]).parameters.items() if p.kind is p.KEYWORD_ONLY}
    given = {k: v for k, v in (kwargs or {}).items() if v is not None}
    unknown = sorted(set(given) - set(params))
    missing = sorted(n for n, p in params.items() if complete and p.default is p.empty and n not in given)
    if unknown or missing:
        return (f"{instruction_id}: kwargs {unknown or missing} {'not taken' if unknown else 'missing'}; "
                f"it takes {sorted(params) or 'none'}")
    for name, value in given.items():
        kind = _KWARG_TYPES.get(str(params[name].annotation))
        if kind and not kind[1](value):
            return f"{instruction_id}: kwarg {name} must be {kind[0]}, not {value!r}"
    return None


def check_instruction(
    instruction_id: str, kwargs: Mapping[str, Any] | None, response: str, *, loose: bool
) -> bool:
    """Whether ``response`` follows one instruction; an instruction that cannot be checked (see
    ``instruction_problem``) is a data error and raises a ValueError."""
    problem = instruction_problem(instruction_id, kwargs)
    if problem:
        raise ValueError(problem)
    check = CHECKERS[instruction_id]
    args = {k: v for k, v in (kwargs or {}).items() if v is not None}
    candidates = loose_variants(response) if loose else [response]
    return any(text.strip() and check(text, **args) for text in candidates)


def _prompt_level(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The four accuracies (0-100), their mean as ``score`` (VoiceBench's 'final' x 100) and counts."""
    n = len(results)
    n_instructions = sum(len(r["strict"]) for r in results)
    accuracies = {
        f"{level}_{kind}": percent(
            sum(all(r[kind]) for r in results) if level == "prompt" else sum(sum(r[kind]) for r in results),
            n if level == "prompt" else n_instructions,
        )
        for kind in ("strict", "loose")
        for level in ("prompt", "instruction")
    }
    complete = all(v is not None for v in accuracies.values())
    return {
        "score": mean(list(accuracies.values())) if complete else None,
        "n": n,
        "n_instructions": n_instructions,
        **accuracies,
    }


def _instructions(item: Item, index: int) -> tuple[list[str], list[Any]]:
    ids = list(get_field(item, "instruction_id_list"))
    kwargs = list(item.get("kwargs") or [{}] * len(ids))
    if len(kwargs) != len(ids):
        raise ValueError(
            f"item {item_id(item, index)!r}: {len(ids)} instruction ids but {len(kwargs)} kwargs"
        )
    return ids, kwargs


def _item_result(item: Item, index: int, ids: list[str], strict: list[bool], loose: list[bool]) -> dict:
    return {
        "id": item_id(item, index),
        "instruction_id_list": ids,
        "strict": strict,
        "loose": loose,
        "score": int(all(strict)),
    }


def _score_strict(items: Sequence[Item]) -> ScoreResult:
    results = []
    for index, item in enumerate(items):
        response = str(get_field(item, "response"))
        ids, kwargs = _instructions(item, index)
        strict = [check_instruction(i, kw, response, loose=False) for i, kw in zip(ids, kwargs)]
        loose = [check_instruction(i, kw, response, loose=True) for i, kw in zip(ids, kwargs)]
        results.append(_item_result(item, index, ids, strict, loose))
    summary = {
        **_prompt_level(results),
        "mode": "strict",
        "language_detector": LANGUAGE_DETECTOR,
        "sentence_splitter": SENTENCE_SPLITTER,
        "word_tokenizer": WORD_TOKENIZER,
    }
    return results, summary


def _score_parity(items: Sequence[Item], seed: int) -> ScoreResult:
    reason = ifeval_parity.unavailable_reason()
    if reason is not None:
        status = f"unavailable: {reason}"
        results = [
            {
                "id": item_id(item, i),
                "instruction_id_list": list(item.get("instruction_id_list") or []),
                "status": status,
            }
            for i, item in enumerate(items)
        ]
        return results, {"score": None, "n": len(items), "mode": "parity", "status": status}
    prompts = [str(get_field(item, "prompt")) for item in items]
    responses = [str(get_field(item, "response")) for item in items]
    scored = ifeval_parity.official_replies(prompts, responses)
    results = []
    for index, (item, (source, reply)) in enumerate(zip(items, scored)):
        ids, kwargs = _instructions(item, index)
        strict, loose, draws = [], [], []
        for position, (instruction_id, kw) in enumerate(zip(ids, kwargs)):
            # The official evaluator builds each instruction twice, once per pass; where it draws a
            # setting at random the two passes draw independently, and so do these.
            tag = f"ifeval-parity:{seed}:{item_id(item, index)}:{position}"
            check, drawn_strict = ifeval_parity.build_check(
                instruction_id, kw, random.Random(tag + ":strict")
            )
            strict.append(bool(reply.strip() and check(reply)))
            check, drawn_loose = ifeval_parity.build_check(instruction_id, kw, random.Random(tag + ":loose"))
            loose.append(any(text.strip() and check(text) for text in loose_variants(reply)))
            if drawn_strict or drawn_loose:
                draws.append({"instruction": position, "strict": drawn_strict, "loose": drawn_loose})
        result = _item_result(item, index, ids, strict, loose)
        if source != index:
            result["scored_reply_of"] = item_id(items[source], source)
        if reply != responses[source]:
            result["chat_tokens_stripped"] = True
        if draws:
            result["random_settings"] = draws
        results.append(result)
    summary = {
        **_prompt_level(results),
        "mode": "parity",
        **ifeval_parity.tools_description(),
        "shared_prompt_items": sum("scored_reply_of" in r for r in results),
        "chat_tokens_stripped": sum("chat_tokens_stripped" in r for r in results),
        "random_settings_items": sum("random_settings" in r for r in results),
        "seed": seed,
    }
    return results, summary


def score_ifeval(items: Sequence[Item], *, mode: str = "strict", seed: int = 0) -> ScoreResult:
    """Per item: which instructions are followed, strict and loose; summary: the four accuracies.

    ``mode="strict"`` uses the kit's checkers (no nltk data needed); ``mode="parity"`` reproduces
    VoiceBench's official evaluator item by item (see ``ifeval_parity``) and, where nltk's punkt
    data or langdetect is missing, reports ``score: None`` with a status saying why. ``seed``
    seeds the draws parity mode makes where the official evaluator draws a setting at random.
    """
    if mode not in MODES:
        raise ValueError(f"ifeval mode must be one of {MODES}, got {mode!r}")
    return _score_parity(items, seed) if mode == "parity" else _score_strict(items)
