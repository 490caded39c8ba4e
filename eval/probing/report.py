"""The comparison: encoders side by side per task, per-probe averages, and the normalised weighted average.

Normalisation (ours, stated because papers differ): a task's score s becomes (s - chance) / (1 - chance),
so 0 is guessing and 1 is perfect whatever the number of classes; chance is 1/classes for accuracy and
the test labels' positive rate for mAP. The weighted average weighs each task by its test clips, as
XARES-style suites weigh tasks by size. Unnormalised means are shown beside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lalm.eval.probing.probes import PROBES
from lalm.jsonl import write_atomic


def normalised(result: dict, probe: str) -> float:
    chance = result["chance"]
    return (result["probes"][probe]["score"] - chance) / (1.0 - chance) if chance < 1 else float("nan")


def averages(results: dict[str, dict], probe: str) -> dict[str, float]:
    """{mean, normalised_weighted} of one encoder's task results for one probe."""
    done = [r for r in results.values() if probe in r["probes"]]
    if not done:
        return {"mean": float("nan"), "normalised_weighted": float("nan")}
    weights = np.array([r["n_test"] for r in done], dtype=float)
    return {"mean": float(np.mean([r["probes"][probe]["score"] for r in done])),
            "normalised_weighted": float(np.average([normalised(r, probe) for r in done], weights=weights))}


def summary(results: dict[str, dict[str, dict]], probes: tuple[str, ...]) -> dict:
    """{encoder: {probe: averages}} for every encoder of `results` ({encoder: {task: result}})."""
    return {enc: {p: averages(tasks, p) for p in probes} for enc, tasks in results.items()}


def markdown(results: dict[str, dict[str, dict]], probes: tuple[str, ...]) -> str:
    """One table: a row per task, a column per encoder, each cell the probes' scores in %."""
    encoders = list(results)
    tasks = list(dict.fromkeys(t for per in results.values() for t in per))
    head = f"scores in % ({' / '.join(probes)}); mAP for multi-label tasks, accuracy otherwise"
    lines = [head, "", "| task | chance | " + " | ".join(encoders) + " |",
             "|---|---|" + "---|" * len(encoders)]
    for task in tasks:
        first = next(per[task] for per in results.values() if task in per)
        cells = [" / ".join(f"{100 * r['probes'][p]['score']:.1f}" for p in probes) if (r := results[e].get(task))
                 else "-" for e in encoders]
        lines.append(f"| {task} ({first['metric']}) | {100 * first['chance']:.1f} | " + " | ".join(cells) + " |")
    table = summary(results, probes)
    for name, key, scale in (("mean", "mean", 100), ("normalised weighted average", "normalised_weighted", 1)):
        cells = [" / ".join(f"{scale * table[e][p][key]:.{1 if scale == 100 else 2}f}" for p in probes)
                 for e in encoders]
        lines.append(f"| **{name}** | | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, dict[str, dict]], probes: tuple[str, ...], path: Path) -> Path | None:
    """Grouped bars per task, one bar per encoder, a panel per probe; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    encoders = list(results)
    tasks = list(dict.fromkeys(t for per in results.values() for t in per))
    fig, axes = plt.subplots(len(probes), 1, figsize=(max(6, 1.2 * len(tasks) * len(encoders) / 2), 2.6 * len(probes)),
                             squeeze=False)
    width = 0.8 / max(1, len(encoders))
    for ax, probe in zip(axes[:, 0], probes):
        for j, enc in enumerate(encoders):
            values = [100 * results[enc][t]["probes"][probe]["score"] if t in results[enc] else 0 for t in tasks]
            ax.bar(np.arange(len(tasks)) + j * width, values, width, label=enc)
        ax.set_title(f"{probe} probe" if probe != "knn" else "kNN")
        ax.set_ylim(0, 100)
        ax.set_ylabel("%")
        ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, tasks, rotation=20, fontsize=8)
    axes[0, 0].legend(fontsize=7, ncols=min(4, len(encoders)))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_report(out: Path, results: dict[str, dict[str, dict]], probes: tuple[str, ...] = PROBES) -> Path:
    figure = plot(results, probes, out / "report.png")
    text = "# Encoder probes\n\n" + markdown(results, probes) + (
        "\n![encoders side by side](report.png)\n" if figure else "\n(no plot: matplotlib is not installed)\n")
    write_atomic(out / "report.md", text)
    return out / "report.md"
