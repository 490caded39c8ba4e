"""``summary.json`` and ``summary.md``: every set's score per mode, the speech-text gap, and provenance.

A run folder holds one model under one generation setup; ``pin_run`` refuses to mix a different
model or settings into it, because cached answers would silently come from the other one. Sets and
modes accumulate across invocations (``--mode audio`` today, ``--mode text`` tomorrow), and each
entry records its data source, scoring options and judge, so the summary says how every number
was made.

The gap of a set is its audio score over its text score: how much of the frozen LLM's own ability
(given the transcript) survives the trip through the audio encoder and projector. The overall gap is
the ratio of the mean scores, over sets scored in both modes, after putting every score on 0-100
(1-5 ratings x20, AIR-Bench's 1-10 x10). The VoiceBench overall is reported only when all nine
leaderboard subsets were run whole in their leaderboard splits.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from lalm.errors import UserError
from lalm.eval.items import EvalSet
from lalm.eval.runner import MODES
from lalm.eval.scoring import OVERALL_SUBSETS, SUBSETS, voicebench_overall
from lalm.jsonl import read_json, write_atomic, write_json_atomic

SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
_SCALE_FACTOR = {"1-5": 20.0, "1-10": 10.0, "0-100": 1.0}


class RunMismatch(UserError, ValueError):
    """The run folder was made with another model or other generation settings."""


def _plain(value: Any) -> Any:
    """The value as it reads back from JSON, so a fresh record compares equal to a stored one."""
    return json.loads(json.dumps(value))


def pin_run(run_dir: Path, run: dict[str, Any]) -> dict[str, Any]:
    """The run folder's summary, created with ``run`` (model, generation) or checked against it."""
    path = run_dir / SUMMARY_JSON
    if not path.exists():
        summary = {"run": _plain(run), "sets": {}, "overall": {}}
        write_json_atomic(path, summary)
        return summary
    summary = read_json(path)
    stored = summary.get("run", {})
    differ = [key for key in ("model", "generation") if stored.get(key) != _plain(run.get(key))]
    if differ:
        detail = "; ".join(f"{k}: folder has {stored.get(k)}, this run {run.get(k)}" for k in differ)
        raise RunMismatch(
            f"{run_dir} holds answers from another {' and '.join(differ)} ({detail}); pass a new --out "
            "so cached answers are never mixed"
        )
    return summary


def record_set(summary: dict, eval_set: EvalSet, mode: str, result: dict[str, Any]) -> None:
    """Put one set's result in one mode into the summary (replacing an older one)."""
    subset = SUBSETS[eval_set.scorer]
    entry = summary["sets"].setdefault(eval_set.name, {"modes": {}})
    entry.update(
        scorer=eval_set.scorer,
        benchmark=subset.benchmark if eval_set.source.get("kind") != "manifest" else "local",
        scale=subset.scale,
        official=eval_set.official,
        data=eval_set.source,
    )
    entry["modes"][mode] = _plain(result)


def normalized(score: float | None, scale: str) -> float | None:
    """A score on 0-100, whatever its set's scale."""
    return None if score is None else score * _SCALE_FACTOR.get(scale, 1.0)


def modes_present(summary: dict) -> list[str]:
    return [m for m in MODES if any(m in entry["modes"] for entry in summary["sets"].values())]


def score_of(entry: dict, mode: str) -> float | None:
    return entry["modes"].get(mode, {}).get("score")


def paired_scores(entry: dict) -> tuple[float | None, float | None]:
    """A set's audio and text scores on the items both modes answered (``entry["paired"]``, when
    the answered items differ), else the two modes' own scores."""
    pair = entry.get("paired") or {}
    if pair.get("same_items") is False:
        return pair.get("audio"), pair.get("text")
    return score_of(entry, "audio"), score_of(entry, "text")


def gap(audio: float | None, text: float | None) -> float | None:
    """Audio over text; None when either is missing or text is 0."""
    return audio / text if audio is not None and text else None


def overall(summary: dict) -> dict[str, dict[str, Any]]:
    """Per mode: the VoiceBench overall (or what it lacks) and the mean 0-100 score over all sets."""
    result = {}
    for mode in modes_present(summary):
        board = {
            name: score_of(entry, mode)
            for name, entry in summary["sets"].items()
            if entry["official"] and entry["benchmark"] == "voicebench"
        }
        missing = [name for name in OVERALL_SUBSETS if board.get(name) is None]
        result[mode] = {
            "voicebench": None if missing else voicebench_overall(board),
            "voicebench_missing": missing,
        }
    both = {
        name: entry
        for name, entry in summary["sets"].items()
        if None not in paired_scores(entry)
    }
    if both:
        means = {
            m: sum(normalized(paired_scores(e)[k], e["scale"]) for e in both.values()) / len(both)
            for k, m in enumerate(("audio", "text"))
        }
        result["gap"] = {
            "sets": list(both),
            "audio_mean": means["audio"],
            "text_mean": means["text"],
            "ratio": gap(means["audio"], means["text"]),
        }
    return result


def save(run_dir: Path, summary: dict) -> None:
    """Recompute the overall and write ``summary.json`` and ``summary.md``."""
    summary["overall"] = overall(summary)
    summary["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_json_atomic(run_dir / SUMMARY_JSON, summary)
    write_atomic(run_dir / SUMMARY_MD, render_markdown(summary))


def _cell(entry: dict, mode: str) -> str:
    if mode not in entry["modes"]:
        return ""
    value = entry["modes"][mode].get("score")
    return f"{value:.2f}" if value is not None else "n/a"


def _number(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def score_table(summary: dict) -> str:
    """The side-by-side table: each set's score per mode, and audio/text where both exist."""
    modes = modes_present(summary)
    header = ["set", "scale", *modes, "audio/text"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, entry in summary["sets"].items():
        ratio = gap(*paired_scores(entry))
        pair = entry.get("paired") or {}
        note = f" (on {pair['n_items']} items both modes answered)" if pair.get("same_items") is False else ""
        cells = [name, entry["scale"], *(_cell(entry, m) for m in modes), _number(ratio) + note]
        lines.append("| " + " | ".join(cells) + " |")
    totals = summary.get("overall") or overall(summary)
    if any(totals.get(m, {}).get("voicebench") is not None for m in modes):
        values = [totals.get(m, {}).get("voicebench") for m in modes]
        ratio = gap(totals.get("audio", {}).get("voicebench"), totals.get("text", {}).get("voicebench"))
        lines.append(
            "| "
            + " | ".join(["**VoiceBench overall**", "0-100", *map(_number, values), _number(ratio)])
            + " |"
        )
    if "gap" in totals:
        g = totals["gap"]
        cells = [f"**mean of {len(g['sets'])} set(s) in both modes**", "0-100"]
        cells += [
            _number(g["audio_mean"]) if m == "audio" else _number(g["text_mean"]) if m == "text" else ""
            for m in modes
        ]
        lines.append("| " + " | ".join([*cells, _number(g["ratio"])]) + " |")
    return "\n".join(lines) + "\n"


def _status(result: dict) -> str:
    notes = [str(result.get("status", "ok"))]
    modes = [m for m in ("strict", "parity") if isinstance(result.get(m), dict)]
    if modes:  # both score modes, whichever is the headline
        notes.append(" / ".join(f"{m} {_number(result[m].get('score'))}" for m in modes))
    if (result.get("parity") or {}).get("n_fallback"):
        notes.append(f"parity guessed {result['parity']['n_fallback']}")
    if result.get("miss_rate") is not None:
        notes.append(f"no answer found in {result['miss_rate']:.1f}%")
    if result.get("transcript_wer") is not None:
        notes.append(f"transcript WER {result['transcript_wer']:.3f} over {result.get('n_transcripts')} items")
    if result.get("wer") is not None:  # the repeat scorer: its WER, and per engine (or a few speakers)
        notes.append(f"WER {result['wer']:.3f} over {result.get('words')} words")
        for key in ("engine", "speaker"):
            groups = result.get(f"by_{key}") or {}
            if 0 < len(groups) <= 12:
                notes.append(f"WER by {key}: " + ", ".join(f"{name} {_number(g['wer'], 3)}"
                                                          for name, g in groups.items()))
    if result.get("panda") is not None:
        notes.append(f"PANDA {result['panda']:.1f} ({result.get('panda_impl')})")
    if result.get("n_failed"):
        notes.append(f"{result['n_failed']} failed, see {result.get('file')}")
    return "; ".join(notes)


def render_markdown(summary: dict) -> str:
    """summary.md: provenance, the score table, and per set and mode the counts and status."""
    run = summary["run"]
    gen = run["generation"]
    model = run["model"]
    lines = [
        "# Evaluation summary",
        "",
        f"- model: `{json.dumps(model, ensure_ascii=False)}`",
        f"- system prompt: {json.dumps(gen.get('system_prompt'))} ({run.get('system_prompt_source', '')})",
        (
            f"- generation: {gen['decoding']}, max_new_tokens {gen['max_new_tokens']}, temperature "
            f"{gen['temperature']}, top_p {gen['top_p']}, seed {gen['seed']}"
        ),
        f"- updated: {summary.get('updated', '')}",
        "",
        "## Scores",
        "",
        score_table(summary),
    ]
    missing = {m: v["voicebench_missing"] for m, v in summary.get("overall", {}).items() if m in MODES}
    if any(missing.values()):
        lines += [
            "VoiceBench overall needs all nine leaderboard subsets, whole, in their leaderboard splits.",
            "",
        ]
    lines += [
        "## Sets",
        "",
        "| set | mode | data | items | answered | judge | scoring | status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in summary["sets"].items():
        data = entry["data"]
        where = f"{data.get('kind')}: {data.get('dataset') or data.get('path')}"
        if data.get("splits"):
            where += f" [{', '.join(data['splits'])}]"
        if data.get("kind") == "hub":
            where += f" rev {data.get('resolved_revision') or data.get('revision')}"
        for mode, result in entry["modes"].items():
            scoring = result.get("scoring", {})
            judge = scoring.get("judge")
            judge_text = (
                f"{judge['model']} T={judge['temperature']} x{scoring.get('judge_samples')}" if judge else "-"
            )
            lines.append(
                f"| {name} | {mode} | {where} | {result.get('n_items')} | {result.get('n_answered')} | "
                f"{judge_text} | {scoring.get('mode', '')} seed {scoring.get('seed', '')} | "
                f"{_status(result)} |"
            )
    return "\n".join(lines) + "\n"
