"""Training rows, the length-grouped batch plan, and loading batches.

The batch plan is a pure function of (rows, seed): every rank computes the same plan and takes
every world-th batch, and a resumed run skips the batches already consumed without reading audio.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lalm.audio import AudioError, load_audio, probe_audio
from lalm.clips import EncodedClip, batch_clips, pad_waveforms
from lalm.jsonl import parse_object, read_lines
from lalm.processor import IGNORE, collate
from lalm.train.config import DataConfig, SourceConfig


@dataclass(frozen=True)
class Row:
    source: int
    line: int
    id: str
    audio: str
    duration: float
    target: str
    prompt: str | None
    truncated: bool
    transcript: str | None
    where: str = ""
    """`file:line` of the row, how skips name it (after the required fields, so rows built by hand still fit)."""
    meta: dict | None = None
    """The row's `meta` (speaker metadata: gender, pace, engine, ...), what objective `label` predicts."""

    def conversation(self, text_instead_of_audio: str | None = None) -> list[dict]:
        """The user turn: the audio (or, for the distillation teacher, its transcript), then the prompt."""
        first = ({"type": "text", "text": text_instead_of_audio} if text_instead_of_audio is not None
                 else {"type": "audio"})
        parts = [first] + ([{"type": "text", "text": self.prompt}] if self.prompt else [])
        return [{"role": "user", "content": parts}]


class SkipLog:
    """Rows left out of training or validation, each listed once with file:line and reason; never fatal.

    Rows are set aside when the sources are read (`found: reading`: text, JSON, fields, audio header,
    length) and when a batch loads them (`found: loading`: audio that fails to decode, a clip missing
    from the feature cache). A row that failed once fails at every draw, so it is listed and counted
    once, by its file:line, however often the plan draws it.
    """

    def __init__(self):
        self.entries: list[dict] = []
        self._seen: set[str] = set()

    def add(self, where: str, reason: str, found: str = "reading") -> bool:
        """Record a skipped row; False when that row is already listed."""
        if where in self._seen:
            return False
        self._seen.add(where)
        self.entries.append({"where": where, "reason": reason, "found": found})
        return True

    def found_loading(self) -> list[dict]:
        """The entries found while loading batches: a resumed run cannot find them again by reading."""
        return [e for e in self.entries if e.get("found") == "loading"]

    def __len__(self) -> int:
        return len(self.entries)

    def summary(self) -> str:
        if not self.entries:
            return "no rows skipped"
        return f"{len(self.entries)} rows skipped (first: {self.entries[0]['where']}: {self.entries[0]['reason']})"


class RowError(ValueError):
    """Why one source row cannot be used; it becomes a skip, never a crash."""


def read_source(index: int, cfg: SourceConfig, max_seconds: float, transcript_field: str,
                skips: SkipLog, probes: dict | None = None) -> list[Row]:
    """Rows of one JSONL source; bad rows go to `skips` with file, line and reason.

    `probes` caches audio headers by path across sources (a corpus is often both an ASR and a SIFT
    source), so each file is probed once.
    """
    path = Path(cfg.path)
    if not path.is_file():
        raise FileNotFoundError(f"data source {path} does not exist; fix data.train/valid paths in the config")
    probes = {} if probes is None else probes
    rows = []
    for line_no, line, undecodable in read_lines(path):
        where = f"{path}:{line_no}"
        try:
            if undecodable:
                raise RowError(undecodable)
            rows.append(parse_row(index, cfg, path, line_no, line, max_seconds, transcript_field, probes))
        except RowError as err:
            skips.add(where, str(err))
    return rows


def parse_row(index: int, cfg: SourceConfig, path: Path, line_no: int, line: str, max_seconds: float,
              transcript_field: str, probes: dict) -> Row:
    """One source line as a Row, or a RowError naming the first thing wrong with it."""
    where = f"{path}:{line_no}"  # the row's name in skips and logs, also its id when it has none
    try:
        raw = parse_object(line)
    except ValueError as err:
        raise RowError(str(err)) from err
    if "audio" not in raw:
        raise RowError("missing field 'audio'")
    audio = raw["audio"]
    if not isinstance(audio, str) or not audio.strip():
        raise RowError(f"audio: expected a file path, got {audio!r}")
    target = raw.get(cfg.target_field)
    if not isinstance(target, str) or not target.strip():
        raise RowError(f"no text in target field {cfg.target_field!r}")
    prompt = cfg.prompt if cfg.prompt is not None else raw.get(cfg.prompt_field)
    if prompt is not None and not isinstance(prompt, str):
        raise RowError(f"{cfg.prompt_field}: expected text or null as the prompt, got {prompt!r}")
    transcript = raw.get(transcript_field)
    if transcript is not None and not isinstance(transcript, str):
        raise RowError(f"{transcript_field}: expected text or null as the transcript, got {transcript!r}")
    truncated = raw.get("truncated", False)
    if truncated is not None and not isinstance(truncated, bool):
        raise RowError(f"truncated: expected true or false, got {truncated!r}")
    stated = raw.get("duration")
    if stated is not None and not _seconds(stated):
        raise RowError(f"duration: expected a positive number of seconds, got {stated!r}")
    audio = audio if Path(audio).is_absolute() else str(path.parent / audio)
    # The header, not the row, says how long the clip is: a stale or wrong `duration` would let a long
    # clip past max_audio_seconds and overfill batch_seconds, and a missing file would pass unnoticed.
    duration = probe_seconds(audio, probes)
    if duration > max_seconds:
        said = f" (the row says {stated} s)" if stated is not None and abs(stated - duration) > 0.1 else ""
        raise RowError(f"{audio}: {duration:.1f} s{said} is over data.max_audio_seconds={max_seconds}")
    meta = raw.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise RowError(f"meta: expected an object of speaker fields, got {meta!r}")
    row_id = raw.get("id")
    return Row(index, line_no, str(row_id if row_id is not None else where), audio, duration, target,
               prompt or None, bool(truncated), transcript, where, meta)


def _seconds(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def probe_seconds(audio: str, probes: dict) -> float:
    """The clip's length from its header (cheap: no decoding), cached per path; RowError when unreadable."""
    if audio not in probes:
        try:
            # No length cap here: data.max_audio_seconds decides, with its own message.
            probes[audio] = probe_audio(audio, max_seconds=math.inf).duration
        except AudioError as err:
            probes[audio] = str(err)  # a second row on the same file gets the same reason
    found = probes[audio]
    if isinstance(found, str):
        raise RowError(found)
    return found


def held_out(row_id: str, fraction: float) -> bool:
    """Stable split by id hash: the same rows are held out in every run and on every rank."""
    digest = hashlib.sha1(row_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def load_rows(cfg: DataConfig, transcript_field: str, skips: SkipLog) -> tuple[list[Row], list[Row], list[float]]:
    """(train rows, validation rows, per-source weights)."""
    probes: dict = {}
    train = [read_source(i, s, cfg.max_audio_seconds, transcript_field, skips, probes) for i, s in enumerate(cfg.train)]
    if cfg.valid:
        valid = [r for i, s in enumerate(cfg.valid)
                 for r in read_source(i, s, cfg.max_audio_seconds, transcript_field, skips, probes)]
    else:
        valid = [r for rows in train for r in rows if held_out(r.id, cfg.valid_fraction)]
        train = [[r for r in rows if not held_out(r.id, cfg.valid_fraction)] for rows in train]
    weights = [s.weight for s in cfg.train]
    for s, rows in zip(cfg.train, train):
        if not rows:
            raise ValueError(f"data source {s.path} has no usable rows; see the skipped rows above")
    flat = [r for rows in train for r in rows]
    return flat, valid[: cfg.max_valid_rows], weights


def batch_plan(rows: list[Row], weights: list[float], cfg: DataConfig, seed: int) -> Iterator[list[int]]:
    """An endless stream of batches (lists of row indices), mixed by source weight, length-grouped.

    Each batch holds at most `max_batch_size` clips and `batch_seconds` of padded audio.
    """
    rng = np.random.default_rng(seed)
    by_source = [[i for i, r in enumerate(rows) if r.source == s] for s in range(len(weights))]
    probs = np.array(weights) / sum(weights)
    orders = [list(rng.permutation(idx)) for idx in by_source]
    positions = [0] * len(by_source)
    mean = float(np.mean([r.duration for r in rows]))
    per_batch = max(1, min(cfg.max_batch_size, int(cfg.batch_seconds / mean)))
    pool_size = per_batch * (cfg.pool_batches if cfg.group_by_length else 1)
    while True:
        pool = []
        for s in rng.choice(len(by_source), size=pool_size, p=probs):
            if positions[s] == len(orders[s]):
                orders[s], positions[s] = list(rng.permutation(by_source[s])), 0
            pool.append(int(orders[s][positions[s]]))
            positions[s] += 1
        if cfg.group_by_length:
            pool.sort(key=lambda i: rows[i].duration)
        batches = cut_batches(pool, rows, cfg)
        for b in rng.permutation(len(batches)):
            yield batches[b]


def cut_batches(order: list[int], rows: list[Row], cfg: DataConfig) -> list[list[int]]:
    """Greedy cut of an ordered list into batches bounded by padded seconds and clip count."""
    batches, current, longest = [], [], 0.0
    for i in order:
        d = rows[i].duration
        if current and (max(longest, d) * (len(current) + 1) > cfg.batch_seconds or len(current) == cfg.max_batch_size):
            batches.append(current)
            current, longest = [], 0.0
        current.append(i)
        longest = max(longest, d)
    if current:
        batches.append(current)
    return batches


class BatchLoader(torch.utils.data.IterableDataset):
    """Loads this rank's batches of the plan, from `start` on; workers split them round-robin.

    Audio that fails to load is skipped and reported in the batch's `skipped` list ({where, reason}
    per row, for the trainer's SkipLog), so a bad file costs one row, not a multi-hour run.
    """

    def __init__(self, rows: list[Row], plan_factory, processor, rank: int, world: int, start: int,
                 feature_cache=None, teacher_field: bool = False, limit: int | None = None,
                 objective: str = "lm"):
        self.rows, self.plan_factory, self.processor = rows, plan_factory, processor
        self.rank, self.world, self.start, self.limit = rank, world, start, limit
        self.feature_cache, self.teacher, self.objective = feature_cache, teacher_field, objective

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for k, batch in enumerate(self.plan_factory()):
            if self.limit is not None and k >= self.limit:
                return
            if k < self.start or k % self.world != self.rank or (k // self.world) % workers != worker:
                continue
            yield self.load([self.rows[i] for i in batch])

    def load(self, rows: list[Row]) -> dict:
        """One batch: audio (waveforms or cached features) and what the objective needs of the text.

        `lm`: token ids, slots and labels, or, for content-dependent projectors, the prompts to build
        after projection; `ctc`: the targets as text (`transcripts`, a recognizer's) and as LLM token ids
        (`ctc_targets`, a ctc projector's). `num_targets` counts the tokens the loss is normalised by.
        """
        clips, kept, skipped = [], [], []
        for row in rows:
            try:
                if self.feature_cache is not None:
                    clip = self.feature_cache.get(row.audio)
                else:
                    clip = torch.from_numpy(load_audio(row.audio))
            except AudioError as err:
                skipped.append({"where": row.where or row.audio, "reason": str(err)})
                continue
            except KeyError as err:
                skipped.append({"where": row.where or row.audio, "reason": str(err.args[0]) if err.args else row.audio})
                continue
            if self.processor.needs_transcripts and self.objective != "ctc" and not row.transcript:
                # The layout shows the recognizer's transcript; training shows the row's reference one.
                skipped.append({"where": row.where or row.audio,
                                "reason": "no transcript (the layout has {transcript}; set data.transcript_field)"})
                continue
            clips.append(clip)
            kept.append(row)
        batch: dict = {"skipped": skipped, "rows": len(kept)}
        if not kept:
            return batch
        batch["meta"] = [r.meta or {} for r in kept]
        tokenizer = self.processor.tokenizer
        if self.objective == "ctc":
            batch["transcripts"] = [r.target for r in kept]  # a recognizer's targets, as text
            batch["ctc_targets"] = [tokenizer(r.target, add_special_tokens=False)["input_ids"] for r in kept]
            batch["num_targets"] = sum(len(t) for t in batch["ctc_targets"])
        elif self.processor.dynamic:
            batch["prompts"] = [{"conversation": r.conversation(), "target": r.target, "supervise_end": not r.truncated}
                                for r in kept]
            # Label counts do not depend on how many audio positions the prompt gets.
            empty = dict.fromkeys(self.processor.branch_lengths, 0)
            batch["num_targets"] = sum(
                sum(label != IGNORE for label in self.processor.encode(
                    p["conversation"], [empty], p["target"], p["supervise_end"]).labels[1:])
                for p in batch["prompts"])
        else:
            samples = [c.samples if isinstance(c, EncodedClip) else c.numel() for c in clips]
            examples = [self.processor.encode(r.conversation(), [n], r.target, supervise_end=not r.truncated,
                                              transcripts=[r.transcript] if self.processor.needs_transcripts else None)
                        for r, n in zip(kept, samples)]
            batch.update(collate(examples, tokenizer.pad_token_id))
            batch["num_targets"] = int((batch["labels"][:, 1:] != IGNORE).sum())
        batch["audio_seconds"] = sum(r.duration for r in kept)
        if self.feature_cache is not None:
            batch["encoder_features"] = batch_clips(clips, self.feature_cache.names)
        else:
            batch["waveforms"], batch["wave_lengths"] = pad_waveforms(clips)
        if self.teacher:
            teacher = [self.processor.encode(r.conversation(r.transcript or ""), [], r.target,
                                             supervise_end=not r.truncated) for r in kept]
            batch["teacher"] = collate(teacher, self.processor.tokenizer.pad_token_id)
        return batch
