"""train/align.py end to end on tiny random models and generated clips."""

import json
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
from tests.helpers import align

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "tiny_align.yaml"


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
    align(f"data.train.0.path={sift}", f"train.out_dir={tmp_path}", "train.steps=3", "train.objective=kd", "train.distill_weight=1.0",
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
    "[{path: SIFT, target_field: text}]}}, {name: sift, train: {steps: 4, objective: kd, distill_weight: 1.0, eval_every: 0}}]",
]


def test_curriculum_runs_ctc_then_lm_stages_and_resumes_by_stage(sift, tmp_path):
    overrides = [o.replace("SIFT", str(sift)) for o in CURRICULUM]
    log = align(f"data.train.0.path={sift}", f"train.out_dir={tmp_path}", *overrides)
    assert "== stage asr: objective ctc, 12 steps" in log and "== stage sift: objective kd, 4 steps" in log
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


def test_phoneme_recognizer_trains_with_objective_ctc_from_the_feature_cache(sift, tmp_path):
    """A trained recognizer over a projector-less branch: objective ctc on the rows' text, the feature
    cache's frames, greedy WER at validation; the checkpoint holds its head and transcribes."""
    from lalm.phonemes import Phonemizer, PhonemizerError

    try:
        Phonemizer()
    except PhonemizerError:
        pytest.skip("espeak-ng's library is not installed")
    recognizer = {"name": "phoneme_ctc", "branch": "audio", "head": {"k": 2, "hidden": 32},
                  "options": {"wordnet": None}}
    align(f"data.train.0.path={sift}", "data.train.0.target_field=text", f"train.out_dir={tmp_path}",
          "train.objective=ctc", "train.steps=6", "train.eval_every=3", "train.lr=0.01",
          f"data.feature_cache={tmp_path / 'cache'}", "model.branches.0.projector=null",
          f"model.recognizer={json.dumps(recognizer)}", "model.prompt.layout=<text>{transcript}</text>")
    assert len([m for m in metrics(tmp_path) if "valid_wer" in m]) == 2
    saved = load_file(tmp_path / "final" / "trained.safetensors")
    assert saved and all(k.startswith("recognizer.mlp.") for k in saved)
    model = LALM.from_pretrained(tmp_path / "final")
    assert model.hears_words and len(model.transcribe([np.zeros(8000, dtype=np.float32)])) == 1


def test_cache_fill_goes_shortest_first_when_durations_are_known(tmp_path):
    """Batches of similar lengths pad little: with durations the fill encodes shortest first."""
    import soundfile as sf

    from lalm import load_config
    from lalm.train.feature_cache import FeatureCache

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


def rows_with_absolute_audio(sift: Path) -> list[str]:
    """The fixture's lines (bad ones included) with audio paths made absolute, for sources elsewhere."""
    lines = []
    for line in sift.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            lines.append(line)
            continue
        lines.append(json.dumps({**row, "audio": str(sift.parent / row["audio"])}))
    return lines


def test_rows_that_fail_to_load_are_listed_and_counted_once(sift, tmp_path):
    """A clip whose header is fine but whose samples are not fails at every draw: one entry, one count."""
    import soundfile as sf

    from lalm import load_config
    from lalm.train.config import AlignConfig
    from lalm.train.data import SkipLog, batch_plan, load_rows

    sf.write(tmp_path / "nan.wav", np.full(8000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    nan_row = {"id": "nan", "audio": str(tmp_path / "nan.wav"), "response": "The colour is red."}
    gone = {**nan_row, "id": "gone", "audio": str(tmp_path / "gone.wav"), "duration": 1.0}
    (tmp_path / "train.jsonl").write_text("\n".join(rows_with_absolute_audio(sift) + [json.dumps(nan_row)]) + "\n")
    valid_lines = rows_with_absolute_audio(sift)[:3] + [json.dumps(nan_row), json.dumps(gone)]
    (tmp_path / "valid.jsonl").write_text("\n".join(valid_lines) + "\n")
    overrides = [f"data.train.0.path={tmp_path / 'train.jsonl'}", f"data.valid=[{{path: {tmp_path / 'valid.jsonl'}}}]",
                 "train.steps=45", "train.eval_every=15", "train.log_every=15", "train.save_every=15"]
    cfg = load_config(CONFIG, overrides, cls=AlignConfig)
    rows, _, weights = load_rows(cfg.data, cfg.train.distill_text_field, SkipLog())
    plan = batch_plan(rows, weights, cfg.data, cfg.train.seed)
    drawn = sum(any(rows[i].id == "nan" for i in next(plan)) for _ in range(cfg.train.steps))
    assert drawn >= 2, "the plan should draw the bad clip more than once for this test to mean anything"

    out = tmp_path / "run"
    log = align(*overrides, f"train.out_dir={out}")
    listed = [json.loads(line) for line in (out / "skipped.jsonl").read_text().splitlines()]
    where = [e["where"] for e in listed]
    assert len(where) == len(set(where)) == 5, listed
    train_source, valid_source = tmp_path / "train.jsonl", tmp_path / "valid.jsonl"
    assert {f"{train_source}:25", f"{train_source}:26"} <= set(where)  # the fixture's bad JSON and unreadable clip
    by_where = {e["where"]: e for e in listed}
    assert "no such audio file" in by_where[f"{valid_source}:5"]["reason"]  # its stated duration is not trusted
    assert by_where[f"{train_source}:27"]["found"] == "loading" and "NaN" in by_where[f"{train_source}:27"]["reason"]
    assert by_where[f"{valid_source}:4"]["found"] == "loading"
    assert [m["skipped_rows"] for m in metrics(out) if "loss" in m][-1] == 5
    assert log.count(f"skipped: {train_source}:27") == 1
    # A resume reads the sources again but cannot see load failures that way: the checkpoint keeps them.
    import shutil

    shutil.rmtree(out / "final")
    align(*overrides, f"train.out_dir={out}")
    assert [json.loads(line) for line in (out / "skipped.jsonl").read_text().splitlines()] == listed


RESUMABLE = ["train.steps=20", "train.save_every=5", "train.keep_last=10", "train.log_every=4", "train.eval_every=10"]


@pytest.fixture(scope="module")
def straight_run(sift, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    align(f"data.train.0.path={sift}", *RESUMABLE, f"train.out_dir={out}")
    return out


def interrupted_copy(straight: Path, target: Path, last_step: int) -> Path:
    """The run as a kill after `last_step`'s checkpoint leaves it, metrics of later steps included."""
    import shutil

    shutil.copytree(straight, target)
    shutil.rmtree(target / "final")
    for step_dir in target.glob("step-*"):
        if int(step_dir.name.split("-")[1]) > last_step:
            shutil.rmtree(step_dir)
    return target


def logged(out: Path) -> list[tuple]:
    return [(m["step"], m.get("loss"), m.get("valid_loss")) for m in metrics(out)]


def same_weights(a: Path, b: Path) -> bool:
    x, y = load_file(a / "final" / "trained.safetensors"), load_file(b / "final" / "trained.safetensors")
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_metrics_continue_exactly_after_a_resume(sift, straight_run, tmp_path):
    """Steps 11-20 were logged before the kill: they are cut, not repeated, and the window that spans
    the resume (steps 9-12) has the loss of the uninterrupted run."""
    out = interrupted_copy(straight_run, tmp_path / "run", last_step=10)
    log = align(f"data.train.0.path={sift}", *RESUMABLE, f"train.out_dir={out}")
    assert "step-0000010 at step 10" in log
    assert logged(out) == logged(straight_run)
    assert [m["step"] for m in metrics(out) if "loss" in m] == [4, 8, 12, 16, 20]
    assert same_weights(out, straight_run)


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["cut weights", "empty state", "flipped byte"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_newest_intact_one(sift, straight_run, tmp_path, damage):
    out = interrupted_copy(straight_run, tmp_path / "run", last_step=10)
    newest = out / "step-0000010"
    bad = {"cut weights": "trained.safetensors", "empty state": "train_state.pt", "flipped byte": "trained.safetensors"}[damage]
    if damage == "cut weights":
        (newest / bad).write_bytes((newest / bad).read_bytes()[:100])
    elif damage == "empty state":
        (newest / bad).write_bytes(b"")
    else:
        flip_last_byte(newest / bad)  # in the tensor data: safetensors still loads it
    leftover = out / ".step-0000015.tmp-k1ll3d"
    leftover.mkdir()
    (leftover / "trained.safetensors").write_bytes(b"half")
    log = align(f"data.train.0.path={sift}", *RESUMABLE, f"train.out_dir={out}")
    assert f"checkpoint step-0000010 is damaged, not resuming from it: {newest / bad}" in log
    assert f"resumed from {out / 'step-0000005'} at step 5" in log
    assert not leftover.exists() and f"removed {leftover}" in log
    assert same_weights(out, straight_run) and logged(out) == logged(straight_run)
    align(f"data.train.0.path={sift}", *RESUMABLE, f"train.out_dir={out}")  # step 10 was saved again, whole


def test_a_skipped_nan_step_stays_out_of_the_logged_loss(sift, tmp_path):
    """An absurd learning rate makes every step after the first NaN; the window mean covers good steps only."""
    align(f"data.train.0.path={sift}", f"train.out_dir={tmp_path}", "train.steps=8", "train.log_every=4",
          "train.eval_every=0", "train.lr=1.0e+30")
    rows = metrics(tmp_path)
    assert [(m["step"], m["skipped_steps"]) for m in rows] == [(4, 3), (8, 4)]
    assert np.isfinite(rows[0]["loss"]) and rows[1]["loss"] is None  # no step of the second window counted
    assert rows[-1]["nan_steps"] == 7


def test_a_damaged_feature_cache_entry_is_a_skip_not_a_crash(tmp_path):
    import soundfile as sf

    from lalm import load_config
    from lalm.train.feature_cache import FeatureCache

    model = LALM(load_config(ROOT / "configs" / "tiny.yaml").model).eval()
    sf.write(tmp_path / "a.wav", 0.1 * np.ones(8000, dtype=np.float32), 16000)
    cache = FeatureCache(tmp_path / "cache", {n: b.encoder for n, b in model.branches.items()})
    assert cache.fill(model, [str(tmp_path / "a.wav")], batch_seconds=1.0) == 1
    entry = cache.file(str(tmp_path / "a.wav"))
    entry.write_bytes(entry.read_bytes()[:50])
    with pytest.raises(KeyError, match="is damaged"):
        cache.get(str(tmp_path / "a.wav"))


def test_torchrun_rank_whose_whole_batch_fails_to_load_keeps_in_step(sift, tmp_path):
    """One-clip batches: a rank whose only clip fails has nothing to sum, yet its all-reduces must
    match the other rank's, and both ranks list and count the row the same way."""
    import soundfile as sf

    from lalm import load_config
    from lalm.train.config import AlignConfig
    from lalm.train.data import SkipLog, batch_plan, load_rows

    sf.write(tmp_path / "nan.wav", np.full(8000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    nan_row = {"id": "nan", "audio": str(tmp_path / "nan.wav"), "response": "The colour is red."}
    source = tmp_path / "train.jsonl"
    source.write_text("\n".join(rows_with_absolute_audio(sift) + [json.dumps(nan_row)]) + "\n")
    overrides = [f"data.train.0.path={source}", "data.valid_fraction=0", "data.max_batch_size=1", "train.steps=16",
                 "train.eval_every=0", "train.log_every=8"]
    cfg = load_config(CONFIG, overrides, cls=AlignConfig)
    rows, _, weights = load_rows(cfg.data, cfg.train.distill_text_field, SkipLog())
    plan = batch_plan(rows, weights, cfg.data, cfg.train.seed)
    assert any(rows[next(plan)[0]].id == "nan" for _ in range(2 * cfg.train.steps)), "the bad clip must be drawn"
    log = align(*overrides, f"train.out_dir={tmp_path / 'run'}", torchrun=2)
    assert "2 rank(s) agree on trained weights" in log
    listed = [json.loads(line) for line in (tmp_path / "run" / "skipped.jsonl").read_text().splitlines()]
    assert [e["where"] for e in listed if e["found"] == "loading"] == [f"{source}:27"]
    assert metrics(tmp_path / "run")[-1]["skipped_rows"] == len(listed) == 3


def test_label_objective_learns_the_metadata_and_resumes_exactly(sift, tmp_path):
    args = [f"data.train.0.path={sift}", "train.objective=label", "train.label_fields=[pitch]",
            "train.label_weight=5.0", "train.schedule=constant", "train.eval_every=0", "train.save_every=5",
            "train.log_every=10"]
    align(*args, "train.steps=30", f"train.out_dir={tmp_path / 'straight'}")
    rows = [m for m in metrics(tmp_path / "straight") if "label_loss" in m]
    assert rows[-1]["label_loss"] < rows[0]["label_loss"] - 0.15 and rows[-1]["label_accuracy"] >= 0.75, rows
    state = torch.load(tmp_path / "straight" / "step-0000030" / "train_state.pt", weights_only=True)
    assert set(state["objective"]) == {"heads.pitch.weight", "heads.pitch.bias"}
    # The heads are part of the run, not of the model a checkpoint serves.
    assert not any("heads" in k for k in load_file(tmp_path / "straight" / "final" / "trained.safetensors"))
    # A field the rows do not tell apart is a config problem found before any model loads.
    from lalm.config import ConfigError
    from lalm.train.align import main

    with pytest.raises(ConfigError, match=r"meta.speaker has 0 value\(s\) \[\]; a label needs two or more"):
        main(["--config", str(CONFIG), *args[:2], "train.label_fields=[pitch,speaker]", *args[3:],
              f"train.out_dir={tmp_path / 'bad'}"])
    # Stopped at step 15 and resumed: the heads come back with the projector, so nothing differs.
    align(*args, "train.steps=15", f"train.out_dir={tmp_path / 'split'}")
    assert "resumed from" in align(*args, "train.steps=30", f"train.out_dir={tmp_path / 'split'}")
    a = load_file(tmp_path / "straight" / "final" / "trained.safetensors")
    b = load_file(tmp_path / "split" / "final" / "trained.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_answer_margin_pushes_the_answer_word_until_it_leads(sift, tmp_path, monkeypatch):
    # Rows whose answer names their meta.pitch: the hinge applies where the target token is " low"/" high".
    rows = []
    for line in rows_with_absolute_audio(sift):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "meta" in row:
            row["response"] = f"The pitch is {row['meta']['pitch']}."
        rows.append(json.dumps(row))
    source = tmp_path / "pitch.jsonl"
    source.write_text("\n".join(rows) + "\n")
    args = [f"data.train.0.path={source}", "train.objective=label", "train.label_fields=[pitch]",
            "train.label_weight=1.0", "train.answer_margin=3.0", "train.schedule=constant", "train.eval_every=0",
            "train.log_every=10", "train.steps=30", f"train.out_dir={tmp_path / 'run'}"]
    align(*args)
    hinge = [m["answer_margin_loss"] for m in metrics(tmp_path / "run") if "answer_margin_loss" in m]
    assert len(hinge) == 3 and hinge[-1] < hinge[0] - 0.5, hinge
    # Classes whose words begin alike are named from the rows and the tokenizer, before any model loads.
    from lalm.config import ConfigError
    from lalm.train import align as align_script

    alike = tmp_path / "alike.jsonl"
    alike.write_text(source.read_text().replace('"pitch": "low"', '"pitch": "very low"')
                     .replace('"pitch": "high"', '"pitch": "very high"'))
    built = []
    monkeypatch.setattr(align_script, "LALM", lambda *a, **k: built.append(1))
    with pytest.raises(ConfigError, match=r"some of meta.pitch's values \['very high', 'very low'\] begin with"):
        align_script.main(["--config", str(CONFIG), f"data.train.0.path={alike}", *args[1:]])
    assert not built


def test_answer_margin_loss_counts_class_words_only():
    from lalm.train.objectives import answer_margin_loss

    logits = torch.zeros(4, 10, requires_grad=True)
    with torch.no_grad():
        logits[0, 3], logits[1, 4], logits[2, 3] = 5.0, 1.0, 0.5
    # token 3 is class 0's word, token 4 class 1's; row 3's target (7) is no class word
    loss = answer_margin_loss(logits, torch.tensor([3, 3, 4, 7]), torch.tensor([3, 4]), torch.tensor([0, 1]), 4.0)
    assert loss.item() == pytest.approx(0.0 + 5.0 + 4.5)  # leads by 5 (past the margin), trails by 1, by 0.5
    loss.backward()
    assert logits.grad[0].abs().sum() == 0 and logits.grad[3].abs().sum() == 0
    assert logits.grad[1, 3] == -1 and logits.grad[1, 4] == 1


def test_class_words_name_classes_that_share_a_first_token():
    from lalm.config import ConfigError
    from lalm.llm import byte_chatml_tokenizer
    from lalm.train.objectives import class_words

    tok = byte_chatml_tokenizer()  # " low" and " high" both begin with the byte " ": that writing is left out
    ids, owner = class_words(tok, "pitch", ["high", "low"])
    words = {tok.decode([t]): int(c) for t, c in zip(ids.tolist(), owner.tolist())}
    assert words == {"h": 0, "l": 1, "H": 0, "L": 1}
    with pytest.raises(ConfigError, match=r"some of meta.pace's values \['fast speech', 'fast walking'\] begin with"):
        class_words(tok, "pace", ["fast speech", "fast walking"])


def test_objectives_check_the_model_before_any_weights_load():
    from lalm.config import ConfigError, load_config
    from lalm.paths import kit_config
    from lalm.train.config import AlignConfig

    def problems(*overrides, config="tiny_align.yaml"):
        try:
            load_config(kit_config(config), list(overrides), cls=AlignConfig)
        except ConfigError as err:
            return "\n".join(err.problems)
        return ""

    assert problems() == ""
    assert "set train.objective=kd" in problems("train.distill_weight=1.0")
    assert "needs train.distill_weight > 0" in problems("train.objective=kd")
    assert problems("train.objective=kd", "train.distill_weight=0.5") == ""
    assert "set train.objective=label" in problems("train.label_fields=[gender]")
    label = problems("train.objective=label")
    assert "needs train.label_weight > 0" in label and "needs train.label_fields" in label
    assert "is not a branch with a trainable projector; choose one of ['audio']" in problems(
        "train.objective=label", "train.label_fields=[gender]", "train.label_weight=1", "train.label_branch=meta")
    assert problems("train.objective=label", "train.label_fields=[gender]", "train.label_weight=1") == ""
    assert "set train.objective=label" in problems("train.answer_margin=3")
    assert "train.answer_margin must be >= 0" in problems(
        "train.objective=label", "train.label_fields=[gender]", "train.label_weight=1", "train.answer_margin=-1")
    assert "needs a trained recognizer (model.recognizer.name: phoneme_ctc) or a trainable branch with a CTC " \
           "projector" in problems("train.objective=ctc")
    # the phoneme recognizer writes text: the LLM's loss cannot train it
    lm_on_words = problems("stages.0.train.objective=lm", config="phoneme_ctc_offline.yaml")
    assert "only recognizer phoneme_ctc would train" in lm_on_words and "no LLM-loss gradient" in lm_on_words
