"""The fixed probing protocol: splits, standardisation, three trained probes and kNN, and the metrics.

Every probe sees features standardised with the training clips' mean and deviation only. The trained
probes (`linear`: softmax regression; `mlp`: one hidden layer of 256 with ReLU and dropout 0.1;
`attn`: a learned query attending over the clip's frames, WavLink-style, then a linear layer) train
full-batch with Adam for a fixed number of epochs; their one free choice, the weight decay, is picked
from a small grid on the validation clips, and the test score of that choice is reported (the probe is
trained on the training clips only). `knn` votes among the k nearest training clips by cosine
similarity (k = 5). A task's own split is used where it has one; a task with folds is scored fold by
fold (test: fold i, validation: fold i+1, training: the rest) and averaged; where a split task has no
validation clips, a seeded fifth of the training groups is held out for it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lalm.eval.probing.tasks import Clip, TaskInfo

PROBES = ("linear", "mlp", "attn", "knn")
WEIGHT_DECAYS = (1e-4, 1e-3, 1e-2, 1e-1)
EPOCHS = {"linear": 300, "mlp": 300, "attn": 150}
LEARNING_RATE = {"linear": 1e-2, "mlp": 1e-3, "attn": 3e-3}
HIDDEN = 256
K = 5


@dataclass
class Split:
    """Indices (into the featured clips) of one train / validation / test division."""

    train: list[int]
    valid: list[int]
    test: list[int]


def splits(info: TaskInfo, clips: list[Clip], seed: int) -> list[Split]:
    """The task's protocol as one split, or one per fold."""
    if info.protocol == "folds":
        out = []
        for fold in range(1, info.folds + 1):
            nxt = fold % info.folds + 1
            out.append(Split([i for i, c in enumerate(clips) if c.fold not in (fold, nxt)],
                             [i for i, c in enumerate(clips) if c.fold == nxt],
                             [i for i, c in enumerate(clips) if c.fold == fold]))
        return out
    by = {name: [i for i, c in enumerate(clips) if c.split == name] for name in ("train", "valid", "test")}
    if not by["valid"]:
        by["train"], by["valid"] = hold_out(by["train"], clips, seed)
    return [Split(by["train"], by["valid"], by["test"])]


def hold_out(train: list[int], clips: list[Clip], seed: int, share: float = 0.2) -> tuple[list[int], list[int]]:
    """A seeded share of the training groups (a clip is its own group without one) as validation."""
    groups = sorted({clips[i].group or clips[i].id for i in train})
    random.Random(seed).shuffle(groups)
    held = set(groups[: max(1, round(share * len(groups)))])
    return ([i for i in train if (clips[i].group or clips[i].id) not in held],
            [i for i in train if (clips[i].group or clips[i].id) in held])


def targets(info: TaskInfo, clips: list[Clip]) -> np.ndarray:
    """Class ids [N] (multiclass) or a multi-hot matrix [N, C] (multilabel)."""
    column = {label: i for i, label in enumerate(info.labels)}
    if info.kind == "multiclass":
        return np.array([column[c.label] for c in clips])
    hot = np.zeros((len(clips), len(info.labels)), np.float32)
    for row, clip in enumerate(clips):
        for label in clip.label if isinstance(clip.label, list) else [clip.label]:
            hot[row, column[label]] = 1.0
    return hot


def score(kind: str, y: np.ndarray, scores: np.ndarray) -> float:
    """Accuracy (multiclass) or mean average precision over classes with a positive (multilabel)."""
    if kind == "multiclass":
        return float((scores.argmax(1) == y).mean())
    precisions = [average_precision(y[:, c], scores[:, c]) for c in range(y.shape[1]) if y[:, c].any()]
    return float(np.mean(precisions)) if precisions else float("nan")


def average_precision(truth: np.ndarray, scores: np.ndarray) -> float:
    order = np.argsort(-scores, kind="stable")
    hits = truth[order] > 0
    precision_at_hit = np.cumsum(hits)[hits] / (np.flatnonzero(hits) + 1)
    return float(precision_at_hit.mean())


def chance(kind: str, y: np.ndarray, classes: int) -> float:
    """What guessing gives: 1/classes for accuracy, the positive rate for mAP."""
    return 1.0 / classes if kind == "multiclass" else float(y.mean())


# --- trained probes --------------------------------------------------------------------------------


class AttentionPool(nn.Module):
    """One learned query attends over a clip's frames; the weighted frames are its global token."""

    def __init__(self, dim: int, classes: int):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(dim))
        self.head = nn.Linear(dim, classes)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weights = (frames @ self.query / math.sqrt(frames.shape[-1])).masked_fill(~mask, float("-inf"))
        return self.head((weights.softmax(1)[..., None] * frames).sum(1))


def build(probe: str, dim: int, classes: int) -> nn.Module:
    if probe == "linear":
        return nn.Linear(dim, classes)
    if probe == "mlp":
        return nn.Sequential(nn.Linear(dim, HIDDEN), nn.ReLU(), nn.Dropout(0.1), nn.Linear(HIDDEN, classes))
    return AttentionPool(dim, classes)


def fit(probe: str, inputs: tuple, y: torch.Tensor, classes: int, decay: float, seed: int,
        multilabel: bool) -> nn.Module:
    """Full-batch Adam for the probe's fixed epochs; `inputs` is (x,) or (frames, mask)."""
    torch.manual_seed(seed)
    model = build(probe, inputs[0].shape[-1], classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE[probe], weight_decay=decay)
    loss_fn = nn.BCEWithLogitsLoss() if multilabel else nn.CrossEntropyLoss()
    model.train()
    for _ in range(EPOCHS[probe]):
        optimizer.zero_grad()
        loss_fn(model(*inputs), y).backward()
        optimizer.step()
    return model.eval()


def predict(model: nn.Module, inputs: tuple) -> np.ndarray:
    with torch.no_grad():
        return model(*inputs).numpy()


def knn_scores(train: np.ndarray, y: np.ndarray, test: np.ndarray, classes: int, multilabel: bool,
               k: int = K) -> np.ndarray:
    """Per test clip, its k nearest training clips' votes (cosine); ties go to the nearer neighbour."""
    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)

    similarity = unit(test) @ unit(train).T
    k = min(k, len(train))
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    if multilabel:
        return y[nearest].mean(1)
    votes = np.zeros((len(test), classes))
    for rank in range(k):  # a vote is worth 1, minus a little for rank, so ties favour the nearest
        np.add.at(votes, (np.arange(len(test)), y[nearest[:, rank]]), 1.0 - rank * 1e-3)
    return votes


# --- running a task ----------------------------------------------------------------------------------


def standardised(pooled: np.ndarray, frames: list[torch.Tensor], split: Split) -> tuple:
    """Pooled vectors and padded frames, scaled by the training clips' statistics only."""
    mean, std = pooled[split.train].mean(0), pooled[split.train].std(0) + 1e-6
    x = (pooled - mean) / std
    train_frames = torch.cat([frames[i] for i in split.train])
    fmean, fstd = train_frames.mean(0), train_frames.std(0) + 1e-6
    padded = nn.utils.rnn.pad_sequence([(f - fmean) / fstd for f in frames], batch_first=True)
    lengths = torch.tensor([f.shape[0] for f in frames])
    mask = torch.arange(padded.shape[1])[None] < lengths[:, None]
    return x.astype(np.float32), padded, mask


def run_probe(probe: str, data: tuple, y: np.ndarray, split: Split, classes: int, kind: str,
              seed: int) -> dict:
    """One probe on one split: its validation choice and the test score."""
    x, frames, mask = data
    multilabel = kind == "multilabel"
    if probe == "knn":
        scores = knn_scores(x[split.train], y[split.train], x[split.test], classes, multilabel)
        return {"score": score(kind, y[split.test], scores), "k": min(K, len(split.train))}

    def inputs(rows: list[int]) -> tuple:
        return (torch.from_numpy(x[rows]),) if probe != "attn" else (frames[rows], mask[rows])

    target = torch.from_numpy(y[split.train]) if multilabel else torch.from_numpy(y[split.train]).long()
    best = None
    for decay in WEIGHT_DECAYS:
        model = fit(probe, inputs(split.train), target, classes, decay, seed, multilabel)
        valid = score(kind, y[split.valid], predict(model, inputs(split.valid)))
        if best is None or valid > best[0]:
            best = (valid, decay, model)
    valid, decay, model = best
    return {"score": score(kind, y[split.test], predict(model, inputs(split.test))), "valid": valid,
            "weight_decay": decay}


def probe_task(info: TaskInfo, clips: list[Clip], pooled: np.ndarray, frames: list[torch.Tensor],
               probes: tuple[str, ...], seed: int) -> dict:
    """Every probe on every split of a task: {probe: {score (mean over splits), per_split}} and the
    task's chance level."""
    y = targets(info, clips)
    classes = len(info.labels)
    runs: dict[str, list[dict]] = {probe: [] for probe in probes}
    division = splits(info, clips, seed)
    for split in division:
        if not split.train or not split.valid or not split.test:
            raise ValueError(f"task {info.name}: a split has no training, validation or test clips")
        data = standardised(pooled, frames, split)
        for probe in probes:
            runs[probe].append(run_probe(probe, data, y, split, classes, info.kind, seed))
    test_rows = sorted({i for s in division for i in s.test})
    return {
        "probes": {p: {"score": float(np.mean([r["score"] for r in rs])), "per_split": rs} for p, rs in runs.items()},
        "metric": info.metric, "chance": chance(info.kind, y[test_rows], classes),
        "n_clips": len(clips), "n_test": len(test_rows), "seed": seed,
    }
