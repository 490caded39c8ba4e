"""Frozen features of a task's clips: encoded once per encoder through the kit's feature cache, then
pooled per clip (the mean over the clip's frames) and kept as frames for the attention-pooled probe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lalm import console
from lalm.audio import AudioError, probe_audio
from lalm.eval.probing.encoders import Encoder
from lalm.eval.probing.tasks import Task
from lalm.train.feature_cache import FeatureCache


@dataclass
class Features:
    """Per kept clip (in task order): its index in the task, mean-pooled vector, and frames."""

    index: list[int]  # positions in task.clips of the clips that have features
    pooled: np.ndarray  # [N, D] float32
    frames: list[torch.Tensor]  # N x [T_i, D] float32
    skipped: list[tuple[str, str]]  # (manifest:LINE, why) of each clip left out (unreadable audio, no frames)


def task_features(encoder: Encoder, task: Task, cache_dir: Path, batch_seconds: float = 120.0,
                  progress: bool = True) -> Features:
    """Encode what the cache lacks (shortest clips first, so batches pad little), then read it back."""
    cache = FeatureCache(cache_dir, {"audio": encoder.module})
    files = [clip.audio for clip in task.clips]
    durations, unreadable, skipped = {}, {}, []
    for path in dict.fromkeys(files):
        try:
            durations[path] = probe_audio(path).duration
        except AudioError as err:
            unreadable[path] = str(err)
    readable = [f for f in files if f in durations]
    if progress and not all(cache.has(f) for f in readable):
        console.note(f"encoding {task.name} with {encoder.spec.label}")
    failed: list[str] = []  # the cache's reasons, by text: matched back to clips by their path below
    cache.fill(encoder, readable, batch_seconds, skipped=failed, durations=durations)
    index, pooled, frames = [], [], []
    for i, (row, path) in enumerate(zip(task.clips, files)):
        if path in unreadable:
            skipped.append((task.where(row), unreadable[path]))
            continue
        try:
            clip = cache.get(path)
        except KeyError as err:  # failed to encode or a damaged entry: named, not fatal
            skipped.append((task.where(row), next((f for f in failed if path in f), str(err.args[0]))))
            continue
        feats = clip.features["audio"].float()
        if feats.shape[0] == 0:
            skipped.append((task.where(row), f"{path}: too short for {encoder.spec.label} to give a frame"))
            continue
        index.append(i)
        frames.append(feats)
        pooled.append(feats.mean(0).numpy())
    return Features(index, np.stack(pooled) if pooled else np.zeros((0, 0), np.float32), frames, skipped)
