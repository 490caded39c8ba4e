"""SIFT generation end to end on the tiny random LLM: output format, rejects, resume, sharding + merge, sources."""

from __future__ import annotations

import importlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

from lalm.data_gen import merge, sift
from lalm.data_gen.backends import BackendOptions, backend_class
from lalm.data_gen.store import sidecar
from lalm.generation import Sampling
from lalm.jsonl import read_jsonl as read
from tests.helpers import make_corpus

TINY = ["--llm", "random:tiny", "--max-new-tokens", "6", "--batch-size", "3"]


def run_sift(manifest: Path, out: Path, *extra: str) -> dict:
    args = sift.build_parser().parse_args(["--asr-manifest", str(manifest), "--out", str(out), *TINY, *extra])
    return sift.run(args)


def test_output_rows_carry_inputs_llm_input_and_generation(tmp_path):
    manifest = make_corpus(tmp_path / "corpus", 4)
    summary = run_sift(manifest, tmp_path / "out.jsonl", "--mode", "sift_sp")
    rows = {r["id"]: r for r in read(tmp_path / "out.jsonl")}
    assert summary["generated"] == 4 and summary["rejects"] == 0
    row = rows["utt1"]
    assert row["audio"] == str(tmp_path / "corpus" / "clip1.wav")
    assert row["speaker"] == "spk1" and row["duration"] == 0.3
    assert row["meta"] == {"gender": "male", "emotion": "angry", "age": "young adult"}
    assert row["llm_input"] == [{"role": "user", "content": "sentence 1 sentence 1 (male, young adult, angry)"}]
    assert row["mode"] == "sift_sp" and row["llm"] == "random:tiny" and row["instruction"] is None
    assert row["template"] == {"user": "{transcript} ({meta})", "system": "none"}
    assert row["generation"] == {"backend": "hf", "max_new_tokens": 6, "temperature": 0.0, "top_p": 1.0,
                                 "seed": 0, "dtype": "float32"}
    # The random LLM never produces its end-of-turn token, so every answer hits the limit.
    assert row["truncated"] is True and row["response_tokens"] == 6 and isinstance(row["response"], str)
    saved = json.loads(sidecar(tmp_path / "out.jsonl", "summary.json").read_text())
    assert saved["tokens"] == 24 and saved["truncated"] == 4 and saved["generation"] == row["generation"]


def test_sit_mode_with_system_prompt_stores_instruction(tmp_path):
    manifest = make_corpus(tmp_path / "corpus", 2)
    run_sift(manifest, tmp_path / "out.jsonl", "--mode", "sit_sp", "--system-prompt", "hear")
    row = read(tmp_path / "out.jsonl")[0]
    assert row["instruction"] == "Describe all the information you can hear."
    system, user = row["llm_input"]
    assert system["role"] == "system" and system["content"].startswith("You are a helpful assistant who can hear.")
    assert user["content"].endswith(")\n\nDescribe all the information you can hear.")


def test_bad_rows_become_rejects_with_reasons_and_the_run_goes_on(tmp_path):
    manifest = make_corpus(tmp_path / "corpus", 2)
    (tmp_path / "corpus" / "text.wav").write_text("this is not audio")
    bad = [
        '{"id": "missing", "audio": "nowhere.wav", "text": "hi"}',
        '{"id": "unreadable", "audio": "text.wav", "text": "hi"}',
        '{"id": "empty", "audio": "clip0.wav", "text": "   "}',
        '{"id": "bad json", "audio": ',
        '{"id": "odd meta", "audio": "clip0.wav", "text": "hi", "meta": {"emotion": "fearfull"}}',
        '{"id": "utt0", "audio": "clip1.wav", "text": "again"}',
    ]
    with manifest.open("a") as f:
        f.write("\n".join(bad) + "\n")
    summary = run_sift(manifest, tmp_path / "out.jsonl")
    rejects = {r["line"]: r for r in read(tmp_path / "out.rejects.jsonl")}
    assert summary["valid"] == 2 and summary["rejects"] == 6
    assert rejects[3]["id"] == "missing" and "no such audio file" in rejects[3]["reason"]
    assert rejects[4]["reason"].startswith("audio:") and "unreadable audio" in rejects[4]["reason"]
    assert rejects[5]["reason"].startswith("text: empty")
    assert rejects[6]["id"] is None and rejects[6]["reason"].startswith("json: not valid JSON")
    assert rejects[7]["reason"].startswith("meta.emotion: unknown value 'fearfull'; valid: angry,")
    assert rejects[8]["reason"] == "id: duplicate id 'utt0', first seen on line 1"
    assert summary["reject_reasons"] == {"audio": 2, "text": 1, "json": 1, "meta.emotion": 1, "id": 1}
    assert sorted(r["id"] for r in read(tmp_path / "out.jsonl")) == ["utt0", "utt1"]


def test_a_line_that_is_not_utf8_is_a_reject_with_its_line(tmp_path):
    manifest = make_corpus(tmp_path / "corpus", 2)
    with manifest.open("ab") as f:
        f.write(b'{"id": "latin", "audio": "clip0.wav", "text": "caf\xe9"}\n')
        f.write(b'{"id": "after", "audio": "clip1.wav", "text": "still read"}\n')
    summary = run_sift(manifest, tmp_path / "out.jsonl")
    assert read(tmp_path / "out.rejects.jsonl") == [
        {"line": 3, "id": None,
         "reason": "encoding: not UTF-8 text (byte 0xe9 at character 51); re-encode the manifest as UTF-8"}]
    assert summary["valid"] == 3 and summary["reject_reasons"] == {"encoding": 1}
    assert sorted(r["id"] for r in read(tmp_path / "out.jsonl")) == ["after", "utt0", "utt1"]


def test_rerun_after_a_torn_line_gives_each_row_once(tmp_path):
    manifest = make_corpus(tmp_path / "corpus", 6)
    out = tmp_path / "out.jsonl"
    run_sift(manifest, out)
    lines = out.read_text().split("\n")
    out.write_text("\n".join(lines[:2]) + "\n" + lines[2][: len(lines[2]) // 2])  # killed in the middle of a write
    summary = run_sift(manifest, out)
    ids = [r["id"] for r in read(out)]
    assert sorted(ids) == [f"utt{i}" for i in range(6)]
    assert summary["done_before"] == 2 and summary["generated"] == 4
    assert run_sift(manifest, out)["generated"] == 0  # a finished run has nothing left to do


@pytest.mark.slow
def test_rerun_after_sigkill_gives_each_row_once(tmp_path):
    manifest = make_corpus(tmp_path / "corpus", 20)
    out = tmp_path / "out.jsonl"
    # One row per batch, so the process writes often and is killed between (or inside) writes.
    command = [sys.executable, "-m", "data_gen.sift", "--asr-manifest", str(manifest), "--out", str(out),
               "--llm", "random:tiny", "--max-new-tokens", "16", "--batch-size", "1"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 2):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = out.read_text().count("\n")
    assert 2 <= written < 20, "the kill should land mid-run"
    # The batch size is not a setting of the answers, so the rerun may use bigger batches.
    summary = run_sift(manifest, out, "--max-new-tokens", "16", "--batch-size", "10")
    ids = [r["id"] for r in read(out)]
    assert len(ids) == len(set(ids)) == 20
    assert summary["done_before"] == written and summary["generated"] == 20 - written


def test_rerun_with_other_settings_is_refused(tmp_path):
    manifest = make_corpus(tmp_path / "corpus", 2)
    run_sift(manifest, tmp_path / "out.jsonl")
    code = sift.main(["--asr-manifest", str(manifest), "--out", str(tmp_path / "out.jsonl"), *TINY,
                      "--mode", "sift_sp"])
    assert code == 2
    assert len(read(tmp_path / "out.jsonl")) == 2


def test_shards_then_merge_equal_an_unsharded_run(tmp_path):
    manifest = make_corpus(tmp_path / "corpus", 7)
    with manifest.open("a") as f:
        f.write('{"id": "broken"\n')
    run_sift(manifest, tmp_path / "all.jsonl")
    shards = [tmp_path / f"part{i}.jsonl" for i in range(3)]
    for i, path in enumerate(shards):
        run_sift(manifest, path, "--shard", f"{i}/3")
    assert merge.main(["--out", str(tmp_path / "merged.jsonl"), *map(str, shards)]) == 0

    def by_id(path: Path) -> dict:
        return {r["id"]: (r["llm_input"], r["response"]) for r in read(path)}

    assert by_id(tmp_path / "merged.jsonl") == by_id(tmp_path / "all.jsonl")
    assert read(tmp_path / "merged.rejects.jsonl") == read(tmp_path / "all.rejects.jsonl")
    merged = json.loads(sidecar(tmp_path / "merged.jsonl", "summary.json").read_text())
    assert merged["outputs"] == 7 and merged["rejects"] == 1 and merged["shards"] == 3


def test_merge_refuses_missing_or_unfinished_shards(tmp_path):
    manifest = make_corpus(tmp_path / "corpus", 4)
    shards = [tmp_path / f"part{i}.jsonl" for i in range(2)]
    for i, path in enumerate(shards):
        run_sift(manifest, path, "--shard", f"{i}/2")
    with pytest.raises(ValueError, match=r"missing \[1\]"):
        merge.merge(shards[:1], tmp_path / "merged.jsonl")
    sidecar(shards[1], "summary.json").unlink()
    with pytest.raises(ValueError, match="has not finished"):
        merge.merge(shards, tmp_path / "merged.jsonl")
    assert not (tmp_path / "merged.jsonl").exists()


def test_hf_dataset_with_column_mapping_and_embedded_audio(tmp_path):
    datasets = pytest.importorskip("datasets")
    make_corpus(tmp_path / "corpus", 3)
    table = {"utt_id": ["a", "b", "c"], "sentence": ["hello there", "good morning", ""],
             "path": [str(tmp_path / "corpus" / f"clip{i}.wav") for i in range(3)], "sex": ["male", "f", "m"]}
    dataset = datasets.Dataset.from_dict(table).cast_column("path", datasets.Audio(decode=False))
    dataset.save_to_disk(str(tmp_path / "ds"))  # embeds the audio bytes: no files behind the rows
    out = tmp_path / "out.jsonl"
    assert sift.main(["--hf-dataset", str(tmp_path / "ds"), "--hf-columns",
                      "id=utt_id,text=sentence,audio=path,meta.gender=sex", "--out", str(out), *TINY,
                      "--mode", "sift_sp"]) == 0
    rows = {r["id"]: r for r in read(out)}
    assert rows["a"]["llm_input"][0]["content"] == "hello there (male)"
    assert rows["b"]["llm_input"][0]["content"] == "good morning (female)"
    assert Path(rows["a"]["audio"]).parent == sidecar(out, "audio")
    assert read(sidecar(out, "rejects.jsonl"))[0]["id"] == "c"


def test_lhotse_cuts_become_rows(tmp_path):
    lhotse = pytest.importorskip("lhotse")
    make_corpus(tmp_path / "corpus", 2)
    cuts = []
    for i, (gender, emotion) in enumerate([("male", "hap"), ("female", "sad")]):
        recording = lhotse.Recording.from_file(tmp_path / "corpus" / f"clip{i}.wav", recording_id=f"rec{i}")
        supervision = lhotse.SupervisionSegment(f"sup{i}", f"rec{i}", 0.0, recording.duration, text=f"words {i}",
                                                gender=gender, language="en", custom={"emotion": emotion})
        cuts.append(lhotse.MonoCut(f"cut{i}", 0.0, recording.duration, 0, recording=recording,
                                   supervisions=[supervision]))
    lhotse.CutSet.from_cuts(cuts).to_file(tmp_path / "cuts.jsonl.gz")
    with open(tmp_path / "cuts.jsonl", "w") as f:  # the same cuts, plain, plus a line that is no cut
        f.write("".join(json.dumps(c.to_dict()) + "\n" for c in cuts) + '{"type": "NoSuchCut"}\n')
    for name in ("cuts.jsonl.gz", "cuts.jsonl"):
        out = tmp_path / f"{name}.out.jsonl"
        summary = sift.run(sift.build_parser().parse_args(
            ["--lhotse-cuts", str(tmp_path / name), "--out", str(out), *TINY, "--mode", "sift_sp"]))
        rows = {r["id"]: r for r in read(out)}
        assert summary["valid"] == 2
        assert [r["llm_input"][0]["content"] for r in rows.values()] == ["words 0 (male, happy, English)",
                                                                          "words 1 (female, sad, English)"]
        assert all(r["audio"].startswith(str(tmp_path / "corpus")) and r["start"] == 0 for r in rows.values())
    assert read(sidecar(out, "rejects.jsonl"))[0]["reason"].startswith("lhotse: not a Lhotse cut")


@pytest.mark.skipif(importlib.util.find_spec("lhotse") is not None, reason="lhotse is installed")
def test_lhotse_input_needs_lhotse(tmp_path, capsys):
    (tmp_path / "cuts.jsonl").write_text("{}\n")
    assert sift.main(["--lhotse-cuts", str(tmp_path / "cuts.jsonl"), "--out", str(tmp_path / "o.jsonl"), *TINY]) == 2
    assert "pip install lhotse" in capsys.readouterr().err


def test_hf_backend_batches_give_the_answers_of_single_prompts():
    backend = backend_class("hf")("random:tiny", Sampling(max_new_tokens=12), BackendOptions())
    conversations = [[{"role": "user", "content": text}] for text in ("hi", "a much longer question here", "mid one")]
    batched = backend.generate(conversations)
    single = [backend.generate([c])[0] for c in conversations]
    assert [a.text for a in batched] == [a.text for a in single]
    assert len({a.text for a in batched}) > 1, "different prompts should give different answers"


@pytest.mark.parametrize("module", ["lalm.data_gen.sift", "lalm.data_gen.merge", "lalm.data_gen.synthesize"])
def test_help_explains_every_flag(module):
    for action in importlib.import_module(module).build_parser()._actions:
        assert action.help, f"{module}: {action.option_strings or action.dest} has no help"
