"""Align the projectors (and optional LoRA) of an LALM on SIFT data; encoders and LLM stay frozen.

    torchrun --nproc_per_node=N train/align.py --config configs/X.yaml [key.sub=value ...]
    python train/align.py --config configs/X.yaml          # one process, CPU or one GPU

Shaped as setup -> train -> save -> cleanup. Rerunning the same command resumes from the latest
checkpoint in train.out_dir and ends exactly where an uninterrupted run would.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from lalm import console
from lalm.checkpoint import WEIGHTS, load_trained, save_checkpoint
from lalm.config import ConfigError, describe_fields, load_config
from lalm.errors import run_command
from lalm.jsonl import append_jsonl, read_jsonl_skip_torn_tail, write_jsonl_atomic
from lalm.model import LALM
from lalm.train import distributed
from lalm.train.checkpoints import FINAL, latest_intact, remove_leftovers, restore, save_step
from lalm.train.config import AlignConfig
from lalm.train.data import BatchLoader, SkipLog, batch_plan, cut_batches, load_rows
from lalm.train.feature_cache import FeatureCache
from lalm.train.objectives import OBJECTIVES, Objective
from lalm.wer import word_errors


@dataclass
class Run:
    cfg: AlignConfig
    dist: distributed.Dist
    model: LALM
    objective: Objective
    params: list
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    rows: list
    valid: list
    weights: list
    cache: FeatureCache | None
    out_dir: Path
    skips: SkipLog = field(default_factory=SkipLog)
    step: int = 0
    counters: dict = field(default_factory=lambda: {"nan_steps": 0, "skipped_rows": 0})
    window: dict = field(default_factory=lambda: new_window())


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=settings_help())
    parser.add_argument("--config", required=True, help="a training yaml with model, data and train sections")
    parser.add_argument("overrides", nargs="*", help="config overrides such as train.steps=100 data.batch_seconds=60")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.overrides, cls=AlignConfig)
    stages = cfg.resolved_stages()
    model, final = None, None
    try:
        for name, stage in stages:
            final = Path(stage.train.out_dir) / FINAL
            if name and (final / WEIGHTS).is_file():
                say(distributed.init(), f"stage {name}: done earlier ({final})")
                continue
            if name:
                say(distributed.init(), f"== stage {name}: objective {stage.train.objective}, {stage.train.steps} steps")
            run = setup(stage, model)
            model = run.model  # later stages train the same model further; the LLM loads once
            train(run)
            final = save_final(run)
        if cfg.stages:
            final = publish_final(final, Path(cfg.train.out_dir) / FINAL)
        return final
    finally:
        distributed.cleanup()


def settings_help() -> str:
    """Every config setting with its default and meaning, as `--help` lists them (overrides use the names)."""
    return "settings (yaml keys, or overrides such as train.steps=100):\n" + "\n".join(
        "  " + line for line in describe_fields(AlignConfig))


# ------------------------------------------------------------------------------------------- setup


def setup(cfg: AlignConfig, model: LALM | None = None) -> Run:
    """Data, model, optimiser, feature cache and resume state; `model` reuses a built one (a later stage)."""
    dist = distributed.init()
    out_dir = Path(cfg.train.out_dir)
    skips = SkipLog()
    rows, valid, weights = load_rows(cfg.data, cfg.train.distill_text_field, skips)
    say(dist, f"data: {len(rows)} training rows, {len(valid)} validation rows; {skips.summary()}")
    problems = OBJECTIVES.get(cfg.train.objective).check_rows(cfg, rows)
    if problems:
        raise ConfigError(problems, source=f"train.objective={cfg.train.objective} on these rows")
    torch.manual_seed(cfg.train.seed)  # same projector init on every rank
    fresh = model is None
    if fresh:
        model = LALM(cfg.model)
    if cfg.train.init_from:
        fresh_parts = load_trained(model, Path(cfg.train.init_from), partial=True)
        say(dist, f"started from {cfg.train.init_from}" + (f"; new trained weights: {len(fresh_parts)}" if fresh_parts else ""))
    model.to(dist.device)
    if fresh and cfg.train.gradient_checkpointing:
        checkpoint_layers(model.llm)
    if fresh and cfg.train.fsdp:
        shard_llm(model.llm)
    say(dist, model.parameter_report())
    # A trained recognizer's head is optimised only by the objective that trains it (ctc): under lm/kd it
    # gets no gradient, and weight decay must not shrink it.
    recognizer = OBJECTIVES.get(cfg.train.objective).trains_recognizer
    objective = OBJECTIVES.get(cfg.train.objective)(cfg, rows, model).to(dist.device)
    params = [p for name, p in model.named_parameters()
              if p.requires_grad and (recognizer or not name.startswith("recognizer."))]
    params += list(objective.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.train.lr, betas=tuple(cfg.train.betas),
                                  weight_decay=cfg.train.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, functools.partial(lr_factor, cfg=cfg.train))
    cache = None
    if cfg.data.feature_cache:
        cache = FeatureCache(cfg.data.feature_cache, {n: b.encoder for n, b in model.branches.items()})
        failed: list[str] = []
        made = cache.fill(model, [r.audio for r in rows + valid], cfg.data.batch_seconds, dist.rank, dist.world, failed,
                          durations={r.audio: r.duration for r in rows + valid})
        distributed.barrier()
        say(dist, f"feature cache {cache.dir}: {made} clips encoded now, {len(failed)} unreadable")
    run = Run(cfg, dist, model, objective, params, optimizer, scheduler, rows, valid, weights, cache, out_dir, skips)
    if dist.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        for leftover in remove_leftovers(out_dir):
            say(dist, f"removed {leftover}, left by a save that was interrupted")
    latest = latest_intact(out_dir, lambda text: say(dist, text))
    if latest is not None:
        directory, trained, state = latest
        restore(model, optimizer, scheduler, trained, state)
        if state.get("objective"):
            objective.load_state_dict(state["objective"])
        run.step, run.counters = state["step"], dict(state["counters"])
        run.window = dict(state.get("window") or new_window())
        # Rows that failed to load before the checkpoint may not be drawn again; the state remembers them.
        for entry in state.get("skipped_loading", []):
            skips.add(entry["where"], entry["reason"], found="loading")
        say(dist, f"resumed from {directory} at step {run.step}")
    run.counters["skipped_rows"] = len(skips)
    if dist.main:
        write_jsonl_atomic(out_dir / "skipped.jsonl", skips.entries)
    return run


def checkpoint_layers(llm) -> None:
    """Recompute each decoder layer in backward; only activations, never LLM weights, need gradients."""
    from torch.utils.checkpoint import checkpoint

    for layer in llm.base_model.layers:
        layer.forward = functools.partial(checkpoint, layer.forward, use_reentrant=False)


def shard_llm(llm) -> None:
    """FSDP2: shard the frozen LLM's decoder layers across ranks so a model larger than one device fits.

    Only the layers are sharded (the bulk of the weights: ~86% of a 7B model). The embedding table
    and LM head stay replicated because the kit calls them directly, outside the root module's
    forward, where FSDP would not gather them.
    """
    from torch.distributed.fsdp import fully_shard

    for layer in llm.base_model.layers:
        fully_shard(layer)


def lr_factor(step: int, cfg) -> float:
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


# ------------------------------------------------------------------------------------------- train


def train(run: Run) -> None:
    cfg, dist, model = run.cfg, run.dist, run.model
    accum = cfg.train.grad_accum
    loader = torch.utils.data.DataLoader(
        BatchLoader(run.rows, lambda: batch_plan(run.rows, run.weights, cfg.data, cfg.train.seed),
                    model.processor, dist.rank, dist.world, start=run.step * accum * dist.world,
                    feature_cache=run.cache, teacher_field=OBJECTIVES.get(cfg.train.objective).teacher,
                    objective=OBJECTIVES.get(cfg.train.objective).batch),
        batch_size=None, num_workers=cfg.data.num_workers,
    )
    batches = iter(loader)
    logger = MetricsLogger(run.out_dir, cfg.train.logger, dist.main, resumed_at=run.step)
    bar = console.progress(total=cfg.train.steps, initial=run.step, desc="align", unit="step", disable=not dist.main)
    # Throughput is timed in this process only; the window's sums may span a resume (they are saved
    # with each checkpoint), so a resumed run logs the same losses as an uninterrupted one.
    clock = {"t0": time.perf_counter(), "tokens": 0, "audio_s": 0.0}
    model.train()
    while run.step < cfg.train.steps:
        micro = [next(batches) for _ in range(accum)]
        loss, tokens, audio_s, applied = step(run, micro)
        run.step += 1
        bar.update(1)
        window = run.window
        if applied:
            window["loss"] += loss * tokens
            window["tokens"] += tokens
        else:
            window["skipped_steps"] += 1  # a NaN/inf loss would make the window mean NaN
        window["audio_s"] += audio_s
        window["steps"] += 1
        clock["tokens"] += tokens
        clock["audio_s"] += audio_s
        if run.step % cfg.train.log_every == 0 or run.step == cfg.train.steps:
            elapsed = time.perf_counter() - clock["t0"]
            metrics = {
                "step": run.step, "loss": window["loss"] / window["tokens"] if window["tokens"] else None,
                "lr": run.scheduler.get_last_lr()[0], "tokens_per_s": clock["tokens"] / elapsed,
                "audio_s_per_s": clock["audio_s"] / elapsed, "skipped_steps": window["skipped_steps"],
                **run.counters, **objective_metrics(run),
            }
            bar.set_postfix(loss="-" if metrics["loss"] is None else f"{metrics['loss']:.3f}",
                            lr=f"{metrics['lr']:.1e}", audio_x=f"{metrics['audio_s_per_s']:.1f}", refresh=False)
            logger.log(metrics)
            run.window = new_window()
            clock = {"t0": time.perf_counter(), "tokens": 0, "audio_s": 0.0}
        if cfg.train.eval_every and (run.step % cfg.train.eval_every == 0 or run.step == cfg.train.steps) and run.valid:
            scores = validation_scores(run)
            logger.log({"step": run.step, **scores})
            if "valid_wer" in scores:
                say(dist, f"step {run.step}: validation CTC loss {scores['valid_loss']:.3f}, "
                          f"greedy transcript WER {scores['valid_wer']:.3f}")
            model.train()
        if run.step % cfg.train.save_every == 0 or run.step == cfg.train.steps:
            if dist.main:
                save_step(run.out_dir, run.step, model, run.optimizer, run.scheduler, run.counters,
                          asdict(cfg), cfg.train.keep_last,
                          progress={"window": dict(run.window), "skipped_loading": run.skips.found_loading(),
                                    "objective": run.objective.state_dict()})
            distributed.barrier()
    bar.close()
    logger.close()


def objective_metrics(run: Run) -> dict[str, float]:
    """The objective's own terms since the last log line (label loss, accuracy), over all ranks."""
    sums = run.objective.report()
    if not sums:
        return {}
    names = list(sums)
    total = distributed.all_sum(torch.stack([sums[k].float() for k in names]).to(run.dist.device)).tolist()
    n = total[names.index("n")]
    return {k: v / n for k, v in zip(names, total) if k != "n"} if n else {}


def new_window() -> dict:
    """Sums over the steps since the last metrics row; plain numbers, so they are saved with a checkpoint."""
    return {"loss": 0.0, "tokens": 0, "audio_s": 0.0, "steps": 0, "skipped_steps": 0}


def step(run: Run, micro: list[dict]) -> tuple[float, int, float, bool]:
    """One optimiser step over `micro` batches; returns (mean token loss, tokens, audio seconds) globally
    and whether the step was applied (False: a NaN/inf loss, skipped on every rank)."""
    cfg, dist, model = run.cfg, run.dist, run.model
    failed = [entry for b in micro for entry in b["skipped"]]
    live = [b for b in micro if b["rows"]]
    local_tokens = sum(b["num_targets"] for b in live)
    # The failure count rides on the token all-reduce, so steps without failures cost no extra collective.
    totals = distributed.all_sum(torch.tensor([float(local_tokens), float(len(failed))], device=dist.device))
    tokens = int(totals[0].item())
    record_skips(run, failed, anyone=totals[1].item() > 0)
    loss_sum = torch.zeros((), device=dist.device)
    for b in live:
        with autocast(cfg, dist.device):
            objective, loss = run.objective.loss(model, to_device(model_inputs(b), dist.device), b, cfg)
        (loss / max(tokens, 1)).backward()
        loss_sum += objective.detach()
    mean_loss = float(distributed.all_sum(loss_sum).item()) / max(tokens, 1)
    # float() even when every row of this rank's batches failed to load: an int64 sum here would meet
    # the other ranks' float32 in the all-reduce and abort the run.
    audio_s = float(distributed.all_sum(torch.tensor(float(sum(b.get("audio_seconds", 0.0) for b in live)),
                                                     device=dist.device)).item())
    if not math.isfinite(mean_loss):
        # Every rank sees the same all-reduced loss, so all skip together.
        run.counters["nan_steps"] += 1
        run.optimizer.zero_grad(set_to_none=True)
        return mean_loss, 0, audio_s, False
    distributed.sum_gradients(run.params, dist.world)
    if cfg.train.clip_grad > 0:
        torch.nn.utils.clip_grad_norm_(run.params, cfg.train.clip_grad)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return mean_loss, tokens, audio_s, True


def record_skips(run: Run, failed: list[dict], anyone: bool) -> None:
    """Add rows that failed to load ({where, reason}) to the run's SkipLog, each once, on every rank.

    All ranks take part in the gather whenever any rank has failures (`anyone`, from an all-reduce), so
    every rank keeps the same list and the same `skipped_rows`; the main rank appends new entries to
    skipped.jsonl as they are found.
    """
    if run.dist.world > 1 and anyone:
        import torch.distributed as torch_dist

        gathered: list = [None] * run.dist.world
        torch_dist.all_gather_object(gathered, failed)
        failed = [entry for part in gathered for entry in part]
    new = [e for e in failed if run.skips.add(e["where"], e["reason"], found="loading")]
    if not new:
        return
    run.counters["skipped_rows"] = len(run.skips)
    if run.dist.main:
        for e in new:
            console.skipped(e["where"], e["reason"])
        append_jsonl(run.out_dir / "skipped.jsonl", run.skips.entries[-len(new):])


@torch.no_grad()
def validation_scores(run: Run) -> dict[str, float]:
    """Validation loss per target token; for `ctc`, also the word error rate of the head's own greedy
    transcripts (the LLM's word search, an inference setting, is left out: this measures what the stage
    trains)."""
    model, dist, cfg = run.model, run.dist, run.cfg
    model.eval()
    ctc = OBJECTIVES.get(cfg.train.objective).batch == "ctc"
    order = sorted(range(len(run.valid)), key=lambda i: run.valid[i].duration)
    loader = BatchLoader(run.valid, lambda: iter(cut_batches(order, run.valid, cfg.data)), model.processor,
                         dist.rank, dist.world, start=0, feature_cache=run.cache,
                         objective=OBJECTIVES.get(cfg.train.objective).batch)
    total = torch.zeros(4, device=dist.device)  # loss, tokens, word errors, reference words
    failed: list[dict] = []
    for b in loader:
        failed += b["skipped"]
        if not b["rows"]:
            continue
        with autocast(cfg, dist.device):
            if ctc:
                inputs = to_device(model_inputs(b), dist.device)
                features = model.audio_features(inputs.get("waveforms"), inputs.get("wave_lengths"),
                                                inputs.get("encoder_features"))
                # eval mode scores the whole vocabulary: the loss inference would see
                loss = model.ctc_loss(features, b["ctc_targets"], b["transcripts"])[0]
                counts = [word_errors(ref, hyp) for ref, hyp in
                          zip(b["transcripts"], model.transcribe_features(features, fused=False))]
                errors, words = sum(c[0] for c in counts), sum(c[1] for c in counts)
                total += torch.tensor([float(loss), b["num_targets"], errors, words], device=dist.device)
            else:
                out = model(**to_device(model_inputs(b), dist.device))
                total += torch.stack([out["loss_sum"].float(), out["num_tokens"].float(),
                                      torch.zeros((), device=dist.device), torch.zeros((), device=dist.device)])
    total = torch.cat([total, torch.tensor([float(len(failed))], device=dist.device)])
    loss_sum, tokens, errors, words, any_failed = distributed.all_sum(total).tolist()
    record_skips(run, failed, anyone=any_failed > 0)
    scores = {"valid_loss": loss_sum / max(tokens, 1)}
    if ctc:
        scores["valid_wer"] = errors / max(words, 1)
    return scores


# ------------------------------------------------------------------------------------------- save


def save_final(run: Run) -> Path:
    final = run.out_dir / FINAL
    agree, checksum = distributed.weights_agree(run.params)
    if not agree:
        raise RuntimeError("ranks ended with different trained weights; gradients were not synchronised")
    say(run.dist, f"{run.dist.world} rank(s) agree on trained weights (checksum {checksum[0]:.6f}, {checksum[1]:.6f})")
    if run.dist.main:
        save_checkpoint(run.model, final)
        say(run.dist, f"done: {final} (LALM.from_pretrained opens it); counters {run.counters}")
    return final


def publish_final(stage_final: Path, target: Path) -> Path:
    """The last stage's model, copied to `train.out_dir/final` under one atomic rename."""
    import shutil
    import tempfile

    from lalm.checkpoint import replace_dir

    if distributed.init().main:
        remove_leftovers(target.parent)  # of an earlier publish that a kill interrupted
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            shutil.copytree(stage_final, tmp, dirs_exist_ok=True)
            replace_dir(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        say(distributed.init(), f"final model of the last stage: {target}")
    distributed.barrier()
    return target


# ------------------------------------------------------------------------------------------- helpers


MODEL_KEYS = ("input_ids", "attention_mask", "slots", "labels", "waveforms", "wave_lengths", "encoder_features",
              "prompts")


def model_inputs(batch: dict) -> dict:
    return {k: batch[k] for k in MODEL_KEYS if k in batch}


def to_device(batch: dict, device) -> dict:
    def move(v):
        if isinstance(v, torch.Tensor):
            return v.to(device, non_blocking=True)
        if isinstance(v, dict):
            return {k: move(x) for k, x in v.items()}
        if isinstance(v, tuple):
            return tuple(move(x) for x in v)
        return v

    return {k: move(v) for k, v in batch.items()}


def autocast(cfg: AlignConfig, device: torch.device):
    use_bf16 = cfg.train.precision == "bf16" or (cfg.train.precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()


def say(dist: distributed.Dist, text: str) -> None:
    if dist.main:
        console.say(text)


class MetricsLogger:
    """metrics.jsonl always; TensorBoard or W&B through `train.logger`.

    A run resumed at step N (0: started over) repeats the steps after N, so rows past N that the
    interrupted run logged are cut first (an atomic rewrite), and the log reads as one uninterrupted
    run. Each row is one synced whole-line append, so a kill leaves at most a torn last line, which
    the cut or the next append removes.
    """

    def __init__(self, out_dir: Path, kind: str, active: bool, resumed_at: int = 0):
        self.active = active
        self.path = out_dir / "metrics.jsonl"
        if active:
            cut_log(self.path, resumed_at)
        self.backend = None
        if active and kind == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

            # purge_step hides the events the interrupted run logged after the checkpoint.
            self.backend = SummaryWriter(str(out_dir / "tensorboard"), purge_step=resumed_at + 1)
        elif active and kind == "wandb":
            import wandb

            self.backend = wandb.init(project="lalm-align", dir=str(out_dir))

    def log(self, metrics: dict) -> None:
        if not self.active:
            return
        append_jsonl(self.path, [metrics])
        step = metrics["step"]
        scalars = {k: v for k, v in metrics.items() if k != "step" and isinstance(v, (int, float))}
        if hasattr(self.backend, "add_scalar"):
            for k, v in scalars.items():
                self.backend.add_scalar(k, v, step)
        elif self.backend is not None:
            self.backend.log(scalars, step=step)

    def close(self) -> None:
        if self.backend is not None and hasattr(self.backend, "close"):
            self.backend.close()


def cut_log(path: Path, step: int) -> None:
    """Keep only the rows of steps up to `step`; a torn last line is left to the next `append_jsonl`."""
    rows = read_jsonl_skip_torn_tail(path)
    kept = [row for row in rows if row.get("step", 0) <= step]
    if len(kept) != len(rows):
        write_jsonl_atomic(path, kept)


def cli() -> int:
    """The installed command (see [project.scripts] in pyproject.toml)."""
    return run_command(main)


if __name__ == "__main__":
    sys.exit(cli())
