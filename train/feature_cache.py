"""Encoder outputs computed once and read back in training: the encoders are frozen, so their
features never change while the projectors learn. An entry is a `lalm.clips.EncodedClip`, the unit
inference keeps across turns too.

One safetensors file per clip under a 2-level fan-out. The key covers every branch's encoder
identity (name, weights, options) and the audio file's path, size and modification time, so a new
encoder or an edited file misses the cache instead of reading stale features.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from lalm.audio import AudioError, load_audio
from lalm.clips import EncodedClip
from lalm.console import progress

NUM_SAMPLES = "__num_samples__"


class FeatureCache:
    def __init__(self, directory: str | Path, encoders: dict[str, object]):
        self.dir = Path(directory)
        self.names = list(encoders)
        self.identity = "|".join(f"{n}={e.identity}" for n, e in encoders.items())

    def key(self, audio: str) -> str:
        stat = os.stat(audio)
        raw = f"{self.identity}\n{os.path.abspath(audio)}\n{stat.st_size}\n{stat.st_mtime_ns}"
        return hashlib.sha1(raw.encode()).hexdigest()

    def file(self, audio: str) -> Path:
        key = self.key(audio)
        return self.dir / key[:2] / f"{key}.safetensors"

    def has(self, audio: str) -> bool:
        return self.file(audio).is_file()

    def get(self, audio: str) -> EncodedClip:
        """The clip's encoder outputs; KeyError when the clip is not cached (or its entry is damaged)."""
        path = self.file(audio)
        if not path.is_file():
            raise KeyError(f"{audio} is not in the feature cache {self.dir}")
        try:
            data = load_file(path)
            samples = int(data.pop(NUM_SAMPLES))
        except Exception as err:  # safetensors raises its own error type for a damaged file
            # A damaged entry costs its row (a named skip), not the run; deleting it re-encodes it.
            raise KeyError(f"{audio}: the feature cache entry {path} is damaged ({err}); delete it and "
                           "rerun to encode the clip again") from err
        return EncodedClip(samples, data)

    def put(self, audio: str, clip: EncodedClip) -> None:
        """Write one clip atomically (temp file + rename): a crash leaves no half-written entry."""
        path = self.file(audio)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            tensors = {n: f.contiguous().cpu() for n, f in clip.features.items()}
            save_file({**tensors, NUM_SAMPLES: torch.tensor([clip.samples])}, tmp)
            os.replace(tmp, path)
        finally:
            # A failed write (disk full) must not leave a temp file behind for every clip it failed on.
            if os.path.exists(tmp):
                os.unlink(tmp)

    @torch.no_grad()
    def fill(self, model, audio_files: list[str], batch_seconds: float, rank: int = 0, world: int = 1,
             skipped: list[str] | None = None, durations: dict[str, float] | None = None) -> int:
        """Encode the clips of `audio_files` (this rank's share) that are not cached yet; returns the count.

        With `durations` (seconds per file), clips are encoded shortest first, so each batch pads its
        clips to a similar length: a batch of random lengths spends about half its encoder time on
        padding."""
        todo = sorted({a for a in audio_files if not self.has(a)})[rank::world]
        if durations:
            todo.sort(key=lambda a: durations.get(a, 0.0))
        done = 0
        bar = progress(total=len(todo), desc="feature cache", unit="clip", disable=rank != 0 or not todo)
        batch: list[tuple[str, torch.Tensor]] = []

        def flush():
            nonlocal done
            for (audio, _), clip in zip(batch, model.encode_clips([w for _, w in batch], transcribe=False)):
                self.put(audio, clip)
            done += len(batch)
            bar.update(len(batch))
            batch.clear()

        for audio in todo:
            try:
                wave = torch.from_numpy(load_audio(audio))
            except AudioError as err:
                if skipped is not None:
                    skipped.append(str(err))
                continue
            if batch and (len(batch) + 1) * max(wave.numel(), max(w.numel() for _, w in batch)) > batch_seconds * 16000:
                flush()
            batch.append((audio, wave))
        if batch:
            flush()
        bar.close()
        return done
