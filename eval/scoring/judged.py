"""VoiceBench's judge-scored sets: open-ended QA (alpacaeval, commoneval, wildvoice) and sd-qa.

Open-ended: the judge rates each reply 1-5 with VoiceBench's rubric, ``samples`` times (VoiceBench
asks for 3 at temperature 0.5); the set's score is the mean of all parsed ratings, as VoiceBench
averages every sample of every item, and the leaderboard shows it as is while the overall uses it
x20. sd-qa: the judge answers Yes/No whether the reply matches the reference, ``samples`` times,
and the majority decides (a tie, possible only with an unparsable or missing sample, leaves the
item undecided and out of the judge accuracy); PANDA (see ``panda``) scores the same items without
a judge; the set's score is the mean of the two accuracies. The leaderboard uses the ``usa`` split.
Unparsable ratings stay in the results with their raw text and are left out of the means.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import official
from .common import SKIPPED_NO_JUDGE, Item, ScoreResult, get_field, item_id, mean, percent
from .judge import Judge, JudgeRequest, judge_items, judge_summary
from .modes import check_mode
from .panda import PandaFn, approx_panda
from .rubrics import open_messages, parse_rating, parse_yes_no, qa_messages

PARITY_PANDA_MISSING = (
    "unavailable: parity PANDA needs qa_metrics==0.2.17 (pip install 'lalm-kit[parity]'); "
    "it is never approximated"
)


def skipped(items: Sequence[Item]) -> ScoreResult:
    """Results for a judge-scored set when no judge is configured: a status, never a zero."""
    return (
        [{"id": item_id(item, i), "status": SKIPPED_NO_JUDGE} for i, item in enumerate(items)],
        {"score": None, "n": len(items), "status": SKIPPED_NO_JUDGE},
    )


def cached_samples(items: Sequence[Item]) -> list[list[dict]]:
    """Each item's judge samples from an earlier run (its ``judge_samples``), the judge cache."""
    return [list(item.get("judge_samples") or ()) for item in items]


def given_votes(items: Sequence[Item]) -> list[list[str]] | None:
    """The judge replies VoiceBench's ``api_judge.py`` already wrote into each item's ``score`` (a list
    of strings), when every item has them; such a file is scored without asking a judge."""
    votes = [item.get("score") for item in items]
    if items and all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in votes):
        return [list(v) for v in votes]  # type: ignore[arg-type]
    return None


def _raw_samples(
    items: Sequence[Item], judge: Judge | None, requests: list[list[JudgeRequest]]
) -> tuple[list[list[str]], list[dict], dict] | None:
    """Each item's raw judge replies, its per-item judge record and the summary's judge fields: from
    the file's own VoiceBench judge output, else from ``judge``; None when there is neither."""
    given = given_votes(items)
    if given is not None:
        return given, [{} for _ in items], {"judge": "given: the file's VoiceBench judge output (score)"}
    if judge is None:
        return None
    judgements = judge_items(judge, requests, cached_samples(items))
    # VoiceBench's api_judge.py keeps each judge reply stripped; a file's own strings are taken as is.
    raws = [[s["raw"].strip() for group in j.samples for s in group] for j in judgements]
    return raws, [j.record() for j in judgements], judge_summary(judge, requests, judgements)


def score_open(
    items: Sequence[Item], *, judge: Judge | None, samples: int = 3, mode: str = "strict"
) -> ScoreResult:
    """Mean 1-5 judge rating (``score``) and its x20 (``score_x20``), both modes; per item its ratings.

    Both modes read the same judge replies: ``strict`` with ``rubrics.parse_rating``, ``parity`` as
    VoiceBench does (``official.rating``: ``float`` or ``[[n]]``, no range check).
    """
    check_mode(mode)
    requests = [
        [
            JudgeRequest(
                open_messages(
                    str(get_field(item, "prompt", "instruction")), str(get_field(item, "response"))
                ),
                samples,
                parse_rating,
            )
        ]
        for item in items
    ]
    got = _raw_samples(items, judge, requests)
    if got is None:
        return skipped(items)
    raws, records, judge_fields = got
    readers = {"strict": parse_rating, "parity": official.rating}
    results, pooled = [], {m: [] for m in readers}
    for index, (item, raw, record) in enumerate(zip(items, raws, records)):
        ratings = {m: [v for r in raw if (v := read(r)) is not None] for m, read in readers.items()}
        for m in readers:
            pooled[m] += ratings[m]
        results.append(
            {
                "id": item_id(item, index),
                "score": mean(ratings[mode]),
                "ratings": ratings[mode],
                "scores": {m: mean(v) for m, v in ratings.items()},
                "n_unreadable": {m: len(raw) - len(v) for m, v in ratings.items()},
                **record,
            }
        )
    by_mode = {}
    for m, values in pooled.items():
        value = mean(values)
        by_mode[m] = {"score": value, "score_x20": None if value is None else 20 * value}
    summary = {
        **by_mode[mode],
        "mode": mode,
        "n": len(items),
        "n_scored": sum(r["score"] is not None for r in results),
        **by_mode,
        **judge_fields,
    }
    return results, summary


def majority(votes: Sequence[bool]) -> bool | None:
    """The strict majority of Yes/No votes, or None on a tie or no votes."""
    yes, no = sum(votes), len(votes) - sum(votes)
    return None if yes == no else yes > no


def score_sdqa(
    items: Sequence[Item],
    *,
    judge: Judge | None,
    samples: int = 3,
    panda: PandaFn = approx_panda,
    official_panda: PandaFn | None = None,
    mode: str = "strict",
) -> ScoreResult:
    """PANDA accuracy, judge accuracy and their mean (``score``), all 0-100, in both modes.

    ``strict``: ``panda`` (the real PANDA where installed, else the approximation, named in
    ``panda_impl``) and a strict majority of votes parsed by ``rubrics.parse_yes_no`` (a tie leaves
    the item undecided). ``parity``: PANDA only from ``qa_metrics==0.2.17`` (``official_panda``;
    without it parity's PANDA and score are None, never approximated) and VoiceBench's majority of
    the raw lower-cased strings (``official.majority_vote``; ``tied`` marks items the official code
    decides by set order). Without a judge PANDA is still reported but ``score`` is None.
    """
    check_mode(mode)
    questions = [str(get_field(item, "prompt", "question")) for item in items]
    references = [str(get_field(item, "reference", "answer")) for item in items]
    responses = [str(get_field(item, "response")) for item in items]
    results, by_mode = _panda_scores(items, questions, references, responses,
                                     {"strict": panda, "parity": official_panda}, mode)
    requests = [
        [JudgeRequest(qa_messages(q, ref, resp), samples, parse_yes_no)]
        for q, ref, resp in zip(questions, references, responses)
    ]
    got = _raw_samples(items, judge, requests)
    if got is None:
        for result in results:
            result["status"] = SKIPPED_NO_JUDGE
        for block in by_mode.values():
            block.update(score=None, gpt=None)
        return results, {"score": None, "mode": mode, "gpt": None, "panda": by_mode[mode]["panda"],
                         "n": len(items), **by_mode, "status": SKIPPED_NO_JUDGE}
    raws, records, judge_fields = got
    _add_judge_votes(results, by_mode, raws, records, mode)
    return results, {
        "score": by_mode[mode]["score"],
        "mode": mode,
        "gpt": by_mode[mode]["gpt"],
        "panda": by_mode[mode]["panda"],
        "panda_impl": by_mode[mode]["panda_impl"],
        "n": len(items),
        "n_undecided": by_mode[mode]["n_undecided"],
        **by_mode,
        **judge_fields,
    }


def _panda_scores(
    items: Sequence[Item], questions: list[str], references: list[str], responses: list[str],
    pandas: dict[str, PandaFn | None], mode: str,
) -> tuple[list[dict], dict[str, dict]]:
    """Per-item PANDA verdicts under each mode's implementation, and each mode's PANDA accuracy."""
    results = []
    for i, item in enumerate(items):
        verdicts = {
            m: None if fn is None else bool(fn(responses[i], references[i], questions[i]))
            for m, fn in pandas.items()
        }
        results.append({"id": item_id(item, i), "panda": verdicts[mode], "pandas": verdicts})
    by_mode = {
        m: {
            "panda": None if fn is None else percent(sum(r["pandas"][m] for r in results), len(items)),
            "panda_impl": None if fn is None else getattr(fn, "__name__", str(fn)),
        }
        for m, fn in pandas.items()
    }
    if pandas["parity"] is None:
        by_mode["parity"]["panda_status"] = PARITY_PANDA_MISSING
    return results, by_mode


def _add_judge_votes(
    results: list[dict], by_mode: dict[str, dict], raws: list[list[str]], records: list[dict], mode: str
) -> None:
    """Each item's votes and majority in both modes (strict: parsed Yes/No; parity: VoiceBench's
    raw-string vote), then each mode's judge accuracy, undecided count and score."""
    for result, raw, record in zip(results, raws, records):
        votes = [v for r in raw if (v := parse_yes_no(r)) is not None]
        parity, tied = official.majority_vote(raw) if raw else (None, False)
        gpts = {"strict": majority(votes), "parity": parity}
        result.update({"votes": votes, "gpt": gpts[mode], "gpts": gpts, "official_tie": tied, **record})
    for m, block in by_mode.items():
        decided = [r["gpts"][m] for r in results if r["gpts"][m] is not None]
        gpt = percent(sum(decided), len(decided))
        block["gpt"] = gpt
        block["n_undecided"] = len(results) - len(decided)
        block["score"] = None if gpt is None or block["panda"] is None else (gpt + block["panda"]) / 2
    by_mode["parity"]["n_official_ties"] = sum(r["official_tie"] for r in results)
