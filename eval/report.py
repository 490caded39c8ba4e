"""The speech-text gap report of a run folder: the side-by-side table and a bar chart of it.

``python eval/voicebench.py --report RUN_DIR`` prints audio, text (and cascade) scores per set, the
audio/text ratio per set and overall, and writes ``RUN_DIR/gap.png``: per set and for the overall
mean, one bar per mode on a common 0-100 scale, labelled with the ratio. matplotlib is an optional
extra (``pip install 'lalm-kit[eval]'``); without it the table is still printed.
"""

from __future__ import annotations

from pathlib import Path

from lalm import console
from lalm.eval.summary import (
    SUMMARY_JSON,
    gap,
    modes_present,
    normalized,
    overall,
    paired_scores,
    score_of,
    score_table,
)
from lalm.jsonl import read_json

PLOT = "gap.png"


def load_summary(run_dir: Path) -> dict:
    path = run_dir / SUMMARY_JSON
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; --report takes a folder written by --out")
    summary = read_json(path)
    summary["overall"] = overall(summary)
    return summary


def _groups(summary: dict) -> list[tuple[str, dict[str, float | None], float | None]]:
    """(label, 0-100 score per mode, audio/text) per set, then the overall mean over sets in both modes."""
    groups = []
    for name, entry in summary["sets"].items():
        values = {m: normalized(score_of(entry, m), entry["scale"]) for m in modes_present(summary)}
        groups.append((name, values, gap(*paired_scores(entry))))
    total = summary["overall"].get("gap")
    if total:
        means = {"audio": total["audio_mean"], "text": total["text_mean"]}
        groups.append((f"mean of {len(total['sets'])}", means, total["ratio"]))
    return groups


def plot_gap(summary: dict, path: Path) -> None:
    """Grouped bars (0-100) per set and mode, plus the overall mean, each labelled with audio/text."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = _groups(summary)
    modes = modes_present(summary)
    width = 0.8 / max(1, len(modes))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(groups) + 2), 4.5))
    for k, mode in enumerate(modes):
        xs = [i + (k - (len(modes) - 1) / 2) * width for i in range(len(groups))]
        ax.bar(xs, [values.get(mode) or 0.0 for _, values, _ in groups], width, label=mode)
    for i, (_, values, ratio) in enumerate(groups):
        if ratio is not None:
            top = max(v or 0.0 for v in values.values())
            ax.annotate(f"{ratio:.2f}", (i, top), ha="center", va="bottom", fontsize=9)
    ax.set_title("Speech-text gap: score per mode (0-100); label = audio/text", fontsize=10)
    ax.set_xticks(range(len(groups)), [label for label, _, _ in groups], rotation=20, ha="right")
    ax.set_ylim(0, 110)
    ax.set_ylabel("score (0-100)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(run_dir: str | Path) -> str:
    """Print the gap table of ``run_dir`` and write its plot; returns the table."""
    run_dir = Path(run_dir)
    summary = load_summary(run_dir)
    table = score_table(summary)
    print(table)
    try:
        plot_gap(summary, run_dir / PLOT)
        print(f"plot: {run_dir / PLOT}")
    except ImportError:
        console.note("no plot: matplotlib is not installed (pip install 'lalm-kit[eval]')")
    return table
