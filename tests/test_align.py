"""train/align.py end to end on tiny random models and generated clips."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lalm import LALM

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "tiny_align.yaml"


def align(*overrides, env=None, torchrun=0, background=False, config=CONFIG):
    cmd = [sys.executable, str(ROOT / "train" / "align.py"), "--config", str(config), *overrides]
    if torchrun:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={torchrun}", "--master_port",
               str(29500 + os.getpid() % 1000), *cmd[1:]]
    environ = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    if background:
        return subprocess.Popen(cmd, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done = subprocess.run(cmd, env=environ, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def training_batch_for(model, clips, targets):
    """A training batch built with the model's own processor, as the trainer builds it."""
    from lalm.model import pad_waveforms
    from lalm.processor import collate

    enc = [model.processor.encode([{"role": "user", "content": [{"type": "audio"}]}], [len(c)], target=t)
           for c, t in zip(clips, targets)]
    batch = collate(enc, model.tokenizer.pad_token_id)
    batch["waveforms"], batch["wave_lengths"] = pad_waveforms([torch.from_numpy(c) for c in clips])
    return batch


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_loss_falls_and_final_checkpoint_loads(sift, tmp_path):
    log = align(f"data.train.0.path={sift}", f"train.out_dir={tmp_path}", "train.steps=40")
    train = [m["loss"] for m in metrics(tmp_path) if "loss" in m]
    valid = [m["valid_loss"] for m in metrics(tmp_path) if "valid_loss" in m]
    assert train[-1] < train[0] - 0.5 and valid[-1] < valid[0] - 0.2, (train, valid)
    assert "2 rows skipped" in log and "broken.wav" in (tmp_path / "skipped.jsonl").read_text()
    assert "trainable" in log and "frozen" in log
    model = LALM.from_pretrained(tmp_path / "final")
    trained = load_file(tmp_path / "final" / "trained.safetensors")
    assert all(torch.equal(model.trained_state_dict()[k], v) for k, v in trained.items())


def test_kill_and_resume_equals_uninterrupted(sift, tmp_path):
    args = [f"data.train.0.path={sift}", "train.steps=60", "train.save_every=5", "train.eval_every=0"]
    align(*args, f"train.out_dir={tmp_path / 'straight'}")
    proc = align(*args, f"train.out_dir={tmp_path / 'killed'}", background=True)
    deadline = time.time() + 300
    while not list((tmp_path / "killed").glob("step-*/train_state.pt")) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "final").exists(), "the run finished before it could be killed"
    log = align(*args, f"train.out_dir={tmp_path / 'killed'}")
    assert "resumed from" in log
    a = load_file(tmp_path / "straight" / "final" / "trained.safetensors")
    b = load_file(tmp_path / "killed" / "final" / "trained.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_feature_cache_training_matches_on_the_fly(sift, tmp_path):
    args = [f"data.train.0.path={sift}", "train.steps=8", "train.eval_every=4"]
    align(*args, f"train.out_dir={tmp_path / 'live'}")
    log = align(*args, f"train.out_dir={tmp_path / 'cached'}", f"data.feature_cache={tmp_path / 'cache'}")
    assert "clips encoded now" in log
    assert len(list((tmp_path / "cache").glob("*/*.safetensors"))) == 24
    a = load_file(tmp_path / "live" / "final" / "trained.safetensors")
    b = load_file(tmp_path / "cached" / "final" / "trained.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    live = [m["valid_loss"] for m in metrics(tmp_path / "live") if "valid_loss" in m]
    cached = [m["valid_loss"] for m in metrics(tmp_path / "cached") if "valid_loss" in m]
    assert np.allclose(live, cached, atol=1e-5)


@pytest.mark.parametrize("sharding", ["train.fsdp=false", "train.fsdp=true"])
def test_torchrun_two_ranks_agree(sift, tmp_path, sharding):
    log = align(f"data.train.0.path={sift}", f"train.out_dir={tmp_path}", "train.steps=6", "train.eval_every=3",
                sharding, torchrun=2)
    assert "2 rank(s) agree on trained weights" in log
    assert (tmp_path / "final" / "trained.safetensors").is_file()


def test_distillation_and_lora_run(sift, tmp_path):
    align(f"data.train.0.path={sift}", f"train.out_dir={tmp_path}", "train.steps=3", "train.distill_weight=1.0",
          "model.llm.lora.enabled=true", "train.grad_accum=2", "train.gradient_checkpointing=true")
    names = load_file(tmp_path / "final" / "trained.safetensors").keys()
    assert any("lora_" in n for n in names) and any(".projector." in n for n in names)


def test_config_errors_stop_before_models_load(tmp_path):
    cmd = [sys.executable, str(ROOT / "train" / "align.py"), "--config", str(CONFIG), "train.steps=0",
           "data.batch_seconds=1", "train.schedule=linear"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    for fragment in ["train.steps: must be at least 1", "batch_seconds", "'linear' is not one of"]:
        assert fragment in done.stderr


CURRICULUM = [
    "model.branches.0.projector.name=ctc", "model.branches.0.projector.options={k: 2, hidden: 32, negatives: 8}",
    "stages=[{name: asr, train: {objective: ctc, steps: 12, lr: 0.01, eval_every: 6}, data: {train: "
    "[{path: SIFT, target_field: text}]}}, {name: sift, train: {steps: 4, distill_weight: 1.0, eval_every: 0}}]",
]


def test_curriculum_runs_ctc_then_lm_stages_and_resumes_by_stage(sift, tmp_path):
    overrides = [o.replace("SIFT", str(sift)) for o in CURRICULUM]
    log = align(f"data.train.0.path={sift}", f"train.out_dir={tmp_path}", *overrides)
    assert "== stage asr: objective ctc, 12 steps" in log and "== stage sift: objective lm, 4 steps" in log
    wer = [m["valid_wer"] for m in metrics(tmp_path / "asr") if "valid_wer" in m]
    assert len(wer) == 2 and 0 <= wer[1] <= wer[0]  # insertions of an untrained head can push it past 1
    asr = load_file(tmp_path / "asr" / "final" / "trained.safetensors")
    sift_final = load_file(tmp_path / "sift" / "final" / "trained.safetensors")
    final = load_file(tmp_path / "final" / "trained.safetensors")
    assert all(torch.equal(final[k], sift_final[k]) for k in final)
    assert any(not torch.equal(asr[k], sift_final[k]) for k in asr)  # stage 2 started from stage 1 and moved on
    model = LALM.from_pretrained(tmp_path / "final")
    assert model.hears_words and len(model.transcribe([np.zeros(8000, dtype=np.float32)])) == 1
    again = align(f"data.train.0.path={sift}", f"train.out_dir={tmp_path}", *overrides)
    assert "stage asr: done earlier" in again and "stage sift: done earlier" in again


def test_cache_fill_goes_shortest_first_when_durations_are_known(tmp_path):
    """Batches of similar lengths pad little: with durations the fill encodes shortest first."""
    import soundfile as sf

    from lalm import load_config
    from train.feature_cache import FeatureCache

    model = LALM(load_config(ROOT / "configs" / "tiny.yaml").model).eval()
    files, durations = [], {}
    for i, seconds in enumerate([3.0, 0.5, 2.0, 1.0]):
        path = tmp_path / f"{i}.wav"
        sf.write(path, 0.1 * np.random.default_rng(i).standard_normal(int(seconds * 16000)).astype(np.float32), 16000)
        files.append(str(path))
        durations[str(path)] = seconds
    seen: list[int] = []
    encode = model.encode_audio
    model.encode_audio = lambda waves, lengths: (seen.extend(lengths.tolist()), encode(waves, lengths))[1]
    cache = FeatureCache(tmp_path / "cache", {n: b.encoder for n, b in model.branches.items()})
    assert cache.fill(model, files, batch_seconds=1.0, durations=durations) == 4
    assert seen == sorted(seen) and len(seen) == 4
    assert all(cache.has(f) for f in files)
