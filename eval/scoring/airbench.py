"""AIR-Bench: the foundation (multiple-choice) and chat (judge-scored) tracks, in both score modes.

Foundation items carry ``question``, the option texts (``choice_a``..``choice_d`` or ``choices``),
``answer_gt`` (the correct option's text) and the model's ``response``; a task is
``task_name + "_" + dataset_name`` as in AIR-Bench's ``score_foundation.py``. Chat items carry
``meta_info`` (the audio description), ``question``, ``answer_gt`` and ``response``; AIR-Bench's
judge sees the reference as Assistant 1 and the model as Assistant 2 and returns two 1-10 scores,
and the model's final score averages both orders. Headline numbers are the leaderboard's: the
foundation Average is the mean of the Speech, Sound and Music means (each the mean of its tasks),
the chat Average the mean of Speech, Sound, Music and Mixed Audio (the mean of speech_and_sound and
speech_and_music); ``data/airbench.json`` holds the groups. ``strict`` and ``parity`` differ as the
scorers below say, and docs/eval.md tables it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from statistics import fmean

from . import official
from .common import Item, ScoreResult, get_field, item_id, mean, percent
from .judge import Judge, JudgeRequest, judge_items, judge_summary
from .judged import cached_samples, skipped
from .mcq import LETTERS, extract_choice, reference_letter
from .modes import check_mode, two_mode_result
from .rubrics import airbench_align_messages, airbench_chat_messages, parse_score_pair


def foundation_task(item: Item) -> str:
    """AIR-Bench's task id: ``task_name`` joined with ``dataset_name`` when the item has one."""
    name = str(get_field(item, "task_name"))
    return f"{name}_{item['dataset_name']}" if item.get("dataset_name") else name


def choice_texts(item: Item) -> list[str]:
    """The option texts, from ``choices`` or ``choice_a``.. ``choice_d`` (absent ones skipped)."""
    if item.get("choices"):
        return [str(c) for c in item["choices"]]
    texts = [
        str(item[key])
        for key in ("choice_a", "choice_b", "choice_c", "choice_d")
        if item.get(key) is not None
    ]
    if not texts:
        raise KeyError(f"item has no choices; it has {', '.join(map(str, item))}")
    return texts


def _reference(item: Item, texts: Sequence[str]) -> str:
    if "answer_gt" not in item:
        return reference_letter(str(get_field(item, "reference", "answer")), len(texts))
    answer = str(item["answer_gt"]).strip()
    matches = [i for i, text in enumerate(texts) if text.strip() == answer]
    if len(matches) != 1:
        raise ValueError(f"answer_gt {answer!r} is not exactly one of the choices {list(texts)}")
    return LETTERS[matches[0]]


def leaderboard_foundation(results: Sequence[dict], key: str) -> dict:
    """Accuracies as AIR-Bench's foundation leaderboard groups them, for results scored under ``key``
    (``scores[key]`` is 1, 0 or None = a failure out of the denominator): per ``task`` (task_name +
    dataset_name, as ``score_foundation.py`` prints), per task_name (mean of its datasets), per
    category (Speech/Sound/Music: mean of its task_names) and ``average`` (mean of the categories)."""
    groups = official.airbench_categories()["foundation"]
    category_of = {task: category for category, tasks in groups.items() for task in tasks}
    per_task: dict[str, dict] = {}
    for r in results:
        entry = per_task.setdefault(r["task"], {"task_name": r["task_name"], "n": 0, "n_failed": 0, "correct": 0})
        value = r["scores"][key]
        if value is None:
            entry["n_failed"] += 1
        else:
            entry["n"] += 1
            entry["correct"] += value
    for entry in per_task.values():
        entry["score"] = percent(entry["correct"], entry["n"])
    names: dict[str, list[float]] = {}
    for entry in per_task.values():
        if entry["score"] is not None:
            names.setdefault(entry["task_name"], []).append(entry["score"])
    task_names = {name: mean(values) for name, values in names.items()}
    categories = {
        category: mean([v for name, v in task_names.items() if category_of.get(name) == category])
        for category in groups
    }
    categories = {c: v for c, v in categories.items() if v is not None}
    return {
        "score": mean(list(categories.values())),
        "categories": categories,
        "task_names": task_names,
        "tasks": per_task,
        "n_failed": sum(e["n_failed"] for e in per_task.values()),
        "uncategorised": sorted(n for n in task_names if n not in category_of),
    }


def score_airbench_foundation(
    items: Sequence[Item], *, mode: str = "strict", judge: Judge | None = None, seed: int = 0
) -> ScoreResult:
    """Foundation accuracy in both modes, grouped as the leaderboard groups it (``score`` = the
    leaderboard's Average: the mean of the Speech, Sound and Music means).

    ``strict``: the letter by the kit's rules (``mcq.extract_choice`` with the option texts), a miss
    counted wrong. ``parity``: AIR-Bench's pipeline. With a ``judge``, its judge-to-letter step first
    (``rubrics.airbench_align_messages``, temperature 1.0, or 2.0 for a seeded half of the items,
    as ``align_in_foundation.py`` does), then ``score_foundation.py``'s character rule
    (``official.airbench_letter``) on the judge's reply; without one, the character rule on the
    reply itself (the official script without its optional alignment). A reply it cannot read is a
    failure, left out of the denominator and counted in ``n_failed``.
    """
    check_mode(mode)
    align = official.airbench_categories()["align_judge"]
    rng = random.Random(seed)
    texts_of = [choice_texts(item) for item in items]
    requests = []
    for item, texts in zip(items, texts_of) if judge else ():
        hot = rng.random() < align["hot_share"]
        messages = airbench_align_messages(
            str(get_field(item, "question")), str(get_field(item, "response")), texts
        )
        temperature = align["hot_temperature"] if hot else align["temperature"]
        requests.append([JudgeRequest(messages, 1, str, temperature)])
    judgements = judge_items(judge, requests, cached_samples(items)) if judge else None
    results = []
    for index, (item, texts) in enumerate(zip(items, texts_of)):
        reference = _reference(item, texts)
        response = str(get_field(item, "response"))
        strict = extract_choice(response, texts)
        aligned = None
        if judgements is not None:
            samples = judgements[index].samples[0]
            aligned = samples[0]["raw"] if samples else None
        read = official.airbench_letter(aligned if judge else response)
        result = two_mode_result(item_id(item, index), reference, strict, read, None, mode)
        result |= {"task": foundation_task(item), "task_name": str(get_field(item, "task_name"))}
        if judgements is not None:
            result |= {"aligned": aligned, "align_temperature": requests[index][0].temperature}
            result |= judgements[index].record()
        results.append(result)
    by_mode = {m: leaderboard_foundation(results, m) for m in ("strict", "parity")}
    by_mode["strict"]["miss_rate"] = percent(sum(r["strict_pred"] is None for r in results), len(results))
    by_mode["parity"]["aligned_by_judge"] = judge is not None
    summary = {
        "score": by_mode[mode]["score"],
        "mode": mode,
        "n": len(results),
        "miss_rate": by_mode["strict"]["miss_rate"],
        "strict": by_mode["strict"],
        "parity": by_mode["parity"],
    }
    if judge is not None:
        summary |= judge_summary(judge, requests, judgements or [])
    return results, summary


def leaderboard_chat(category_scores: dict[str, float | None]) -> dict:
    """AIR-Bench chat's leaderboard columns from ``cal_score.py`` categories: Speech, Sound, Music,
    Mixed Audio (mean of speech_and_sound and speech_and_music) and their mean, ``average``."""
    columns = official.airbench_categories()["chat_leaderboard"]
    board = {
        column: mean([v for c in parts if (v := category_scores.get(c)) is not None])
        for column, parts in columns.items()
    }
    complete = all(v is not None for v in board.values())
    return {**board, "average": mean(list(board.values())) if complete else None}


def score_airbench_chat(
    items: Sequence[Item], *, judge: Judge | None, samples: int = 1, mode: str = "strict", seed: int = 0
) -> ScoreResult:
    """Mean 1-10 judge score of the model (``score``: the leaderboard Average) and of the reference,
    overall, per category and per leaderboard column, in both modes.

    Both modes ask the pairwise judge in both orders (reference first, then reply first) to cancel
    its position bias. ``strict``: at the judge's configured temperature, scores 1-10 read by
    ``rubrics.parse_score_pair``, an item scoring the mean of both orders when both parsed.
    ``parity``: as ``score_chat.py``/``cal_score.py``: temperature 1.0, or 2.0 for a seeded half of
    the requests; two space-separated integers at most 10 (0 counts); each order averaged per
    category over its readable replies, then the two orders averaged.
    """
    check_mode(mode)
    if judge is None:
        return skipped(items)
    rng = random.Random(seed)  # one stream in item order: which requests run hot is reproducible
    requests = [_chat_requests(item, samples, rng) for item in items]
    judgements = judge_items(judge, requests, cached_samples(items))
    results = [_chat_result(item, index, judgement, mode)
               for index, (item, judgement) in enumerate(zip(items, judgements))]
    by_mode = {"strict": _chat_strict(results), "parity": _chat_parity(results)}
    summary = {
        "score": by_mode[mode]["score"],
        "mode": mode,
        "n": len(items),
        **by_mode,
        **judge_summary(judge, requests, judgements),
    }
    return results, summary


def _chat_requests(item: Item, samples: int, rng: random.Random) -> list[JudgeRequest]:
    """Both orders of the pairwise judge prompt, as strict asks them and then as the official script."""
    chat = official.airbench_categories()["chat_judge"]
    audio, question = str(get_field(item, "meta_info")), str(get_field(item, "question"))
    reference, response = str(get_field(item, "answer_gt", "reference")), str(get_field(item, "response"))
    orders = (
        airbench_chat_messages(audio, question, reference, response),
        airbench_chat_messages(audio, question, response, reference),
    )
    strict = [JudgeRequest(m, samples, parse_score_pair) for m in orders]
    parity = [
        JudgeRequest(m, 1, str, chat["hot_temperature"] if rng.random() < chat["hot_share"] else chat["temperature"])
        for m in orders
    ]
    return strict + parity


def _chat_result(item: Item, index: int, judgement, mode: str) -> dict:
    """One item's scores: strict's mean of both orders, and the official pairs for parity."""
    reference_first, response_first = (
        [s["value"] for s in group if s["value"] is not None] for group in judgement.samples[:2]
    )
    if reference_first and response_first:
        score = (fmean(v[1] for v in reference_first) + fmean(v[0] for v in response_first)) / 2
        reference_score = (fmean(v[0] for v in reference_first) + fmean(v[1] for v in response_first)) / 2
    else:
        score = reference_score = None
    official_pairs = [
        official.airbench_score_pair(group[0]["raw"]) if group else None for group in judgement.samples[2:]
    ]
    task = item.get("task_name")
    return {
        "id": item_id(item, index),
        "category": official.airbench_categories()["chat"].get(task, task),
        "score": score if mode == "strict" else None,
        "reference_score": reference_score,
        "strict_score": score,
        "official_pairs": official_pairs,
        **judgement.record(),
    }


def _chat_strict(results: Sequence[dict]) -> dict:
    scored = [r for r in results if r["strict_score"] is not None]
    categories = {}
    for name in dict.fromkeys(r["category"] for r in scored):
        group = [r for r in scored if r["category"] == name]
        categories[name] = {
            "score": mean([r["strict_score"] for r in group]),
            "reference_score": mean([r["reference_score"] for r in group]),
            "n_scored": len(group),
        }
    board = leaderboard_chat({c: v["score"] for c, v in categories.items()})
    return {
        "score": board["average"],
        "leaderboard": board,
        "pooled_score": mean([r["strict_score"] for r in scored]),
        "reference_score": mean([r["reference_score"] for r in scored]),
        "n_scored": len(scored),
        "categories": categories,
    }


def _chat_parity(results: Sequence[dict]) -> dict:
    """Per order, per category: the model's mean over readable replies (reference-first: the second
    number; reply-first: the first); a category's score is the mean over the orders that have one."""
    categories = {}
    for name in dict.fromkeys(r["category"] for r in results):
        group = [r for r in results if r["category"] == name]
        orders = [
            mean([p[1] for r in group if (p := r["official_pairs"][0]) is not None]),
            mean([p[0] for r in group if (p := r["official_pairs"][1]) is not None]),
        ]
        categories[name] = {
            "score": mean([o for o in orders if o is not None]),
            "by_order": orders,
            "n_failed": sum(p is None for r in group for p in r["official_pairs"]),
        }
    board = leaderboard_chat({c: v["score"] for c, v in categories.items()})
    return {"score": board["average"], "leaderboard": board, "categories": categories}
