"""Data loaders on small local copies built here: VoiceBench (save_to_disk, parquet, per-split
folders) through datasets without a codec stack, and AIR-Bench's meta-file layout; nothing from the hub."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lalm.audio import AudioError
from lalm.eval import voicebench
from lalm.eval.airbench_data import FOUNDATION_INSTRUCTION, load_airbench
from lalm.eval.items import DataError
from lalm.eval.voicebench_data import load_voicebench
from lalm.jsonl import read_jsonl_skip_torn_tail
from tests.helpers import FakeJudgeServer, tone, write_clip


def wav_bytes(freq: float, rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, tone(freq), rate, format="WAV")
    return buffer.getvalue()


def voicebench_split(n: int, broken: int | None = None, cast: bool = True, **columns: list):
    """A split as VoiceBench stores it: an Audio column of {bytes, path} plus text columns
    (``cast=False`` leaves the audio a plain {bytes, path} struct, as a hand-made copy may)."""
    from datasets import Audio, Dataset

    audio = [
        {"bytes": b"not audio" if i == broken else wav_bytes(300 + 100 * i), "path": f"{i}.wav"}
        for i in range(n)
    ]
    prompts = [f"Question {i}?" for i in range(n)]
    dataset = Dataset.from_dict({"audio": audio, "prompt": prompts, **columns})
    return dataset.cast_column("audio", Audio()) if cast else dataset


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    from datasets import DatasetDict

    root = tmp_path / "voicebench"
    DatasetDict({"test": voicebench_split(3, broken=2, reference=["A", "C", "B"])}).save_to_disk(
        root / "openbookqa"
    )
    DatasetDict(
        {
            "usa": voicebench_split(2, reference=["Paris", "four"]),
            "aus": voicebench_split(1, reference=["Canberra"]),
        }
    ).save_to_disk(root / "sd-qa")
    for domain, cast in (("biology", True), ("law", False)):  # mmsu as one save_to_disk folder per split
        voicebench_split(2, cast=cast, reference=["A", "B"]).save_to_disk(root / "mmsu" / domain)
    return root


def test_voicebench_save_to_disk_maps_columns_and_decodes_audio(data_dir: Path) -> None:
    obqa = load_voicebench("openbookqa", data_dir=data_dir)
    assert (obqa.name, obqa.scorer, obqa.official, obqa.source["format"]) == (
        "openbookqa",
        "openbookqa",
        True,
        "save_to_disk",
    )
    first = obqa.items[0]
    assert (first.id, first.prompt, first.question) == ("0", "Question 0?", None)
    assert first.fields == {"reference": "A", "split": "test"}
    wave = first.audio()
    assert wave.dtype == np.float32 and wave.shape == (8000,)
    with pytest.raises(AudioError, match="openbookqa.*row 2.*undecodable"):
        obqa.items[2].audio()  # a broken row fails on its own, when loaded

    sdqa = load_voicebench("sd-qa", data_dir=data_dir)  # the leaderboard's accent by default
    assert [i.fields["reference"] for i in sdqa.items] == ["Paris", "four"] and sdqa.source["splits"] == [
        "usa"
    ]
    other = load_voicebench("sd-qa", data_dir=data_dir, split="aus")
    assert (other.name, other.official) == ("sd-qa-aus", False)  # never mixed into the leaderboard sd-qa

    mmsu = load_voicebench("mmsu", data_dir=data_dir)  # all domains; ids keep them apart
    assert [i.id for i in mmsu.items] == ["biology/0", "biology/1", "law/0", "law/1"]
    assert mmsu.source["format"] == "save_to_disk per split"
    assert mmsu.items[3].audio().shape == (8000,)  # decoded from a plain {bytes, path} struct too
    assert len(load_voicebench("mmsu", data_dir=data_dir, limit=3).items) == 3


def test_voicebench_parquet_layout(tmp_path: Path) -> None:
    folder = tmp_path / "vb" / "advbench"
    folder.mkdir(parents=True)
    voicebench_split(2).to_parquet(str(folder / "test-00000-of-00001.parquet"))
    advbench = load_voicebench("advbench", data_dir=tmp_path / "vb", cache_dir=str(tmp_path / "cache"))
    assert advbench.source["format"] == "parquet" and len(advbench.items) == 2
    assert advbench.items[1].audio().shape == (8000,)


def test_voicebench_errors_name_the_problem_and_fix(data_dir: Path, tmp_path: Path) -> None:
    from datasets import DatasetDict

    DatasetDict({"test": voicebench_split(1)}).save_to_disk(data_dir / "bbh")  # no id, no reference
    with pytest.raises(DataError, match=r"missing column\(s\) id, reference; it has audio, prompt"):
        load_voicebench("bbh", data_dir=data_dir)
    with pytest.raises(DataError, match=r"no split nga; it has usa, aus"):
        load_voicebench("sd-qa", data_dir=data_dir, split="nga")
    with pytest.raises(DataError, match="unknown VoiceBench subset 'airbench_chat'"):
        load_voicebench("airbench_chat", data_dir=data_dir)
    (tmp_path / "empty" / "ifeval").mkdir(parents=True)
    with pytest.raises(DataError, match="holds no dataset_dict.json"):
        load_voicebench("ifeval", data_dir=tmp_path / "empty")


def test_voicebench_run_reports_an_unreadable_row_and_scores_the_rest(
    data_dir: Path,
    tmp_path: Path,
    server: FakeJudgeServer,
    capsys,
) -> None:
    server.script = lambda body: (200, ["The answer is A."])
    out = tmp_path / "run"
    argv = [
        "--endpoint",
        server.base_url,
        "--endpoint-model",
        "peer",
        "--mode",
        "audio",
        "--out",
        str(out),
        "--data-dir",
        str(data_dir),
        "--subset",
        "openbookqa",
        "--no-progress",
    ]
    assert voicebench.main(argv) == 0
    assert "openbookqa [audio]: 1 item(s) failed" in capsys.readouterr().err
    rows = {r["id"]: r for r in read_jsonl_skip_torn_tail(out / "openbookqa.audio.jsonl")}
    assert "undecodable" in rows["2"]["error"] and rows["0"]["result"]["correct"]
    entry = json.loads((out / "summary.json").read_text())["sets"]["openbookqa"]
    assert entry["modes"]["audio"]["score"] == 50.0 and entry["data"]["kind"] == "local"
    assert entry["data"]["fingerprints"]["test"]


def airbench_root(tmp_path: Path) -> Path:
    """A two-item AIR-Bench copy in the release layout."""
    root = tmp_path / "airbench"
    foundation = [
        {
            "uniq_id": 11,
            "path": "a.wav",
            "task_name": "Speaker_Gender_Recognition",
            "dataset_name": "VoxCeleb",
            "question": "Who is speaking?",
            "choice_a": "a man",
            "choice_b": "a woman",
            "answer_gt": "a woman",
        },
        {
            "uniq_id": 12,
            "path": "g.wav",
            "task_name": "Audio_Grounding",
            "dataset_name": "AudioCaps",
            "question": "When?",
            "choice_a": "[0, 1]",
            "choice_b": "[1, 2]",
            "choice_c": "[2, 3]",
            "choice_d": "[3, 4]",
            "answer_gt": "[0, 1]",
        },
    ]
    chat = [
        {
            "uniq_id": 21,
            "path": "c.wav",
            "task_name": "sound_QA",
            "dataset_name": "Clotho",
            "question": "What do you hear?",
            "meta_info": "rain on a roof",
            "answer_gt": "Rain.",
        }
    ]
    root.mkdir(parents=True)
    (root / "Foundation_meta.json").write_text(json.dumps(foundation))
    (root / "Chat_meta.json").write_text(json.dumps(chat))
    write_clip(root / "Speaker_Gender_Recognition_VoxCeleb" / "a.wav", 300)
    write_clip(root / "Audio_Grounding_AudioCaps" / "g.flac", 300)  # AIR-Bench ships these as flac
    write_clip(root / "sound_QA_Clotho" / "c.wav", 300)
    return root


def test_airbench_layout(tmp_path: Path) -> None:
    root = airbench_root(tmp_path)
    foundation = load_airbench(root, "airbench_foundation")
    gender, grounding = foundation.items
    assert gender.question == f"{FOUNDATION_INSTRUCTION}\nWho is speaking?\nA. a man\nB. a woman"
    assert gender.prompt is None and gender.fields["answer_gt"] == "a woman"
    assert grounding.audio().shape == (8000,)  # found the .flac
    (chat,) = load_airbench(root, "airbench_chat").items
    assert chat.question == "What do you hear?" and "rain on a roof" in chat.prompt
    (root / "Chat_meta.json").write_text(json.dumps([{"uniq_id": 1, "path": "x.wav"}]))
    with pytest.raises(DataError, match="Chat_meta.json item 0: missing task_name, dataset_name, question"):
        load_airbench(root, "airbench_chat")


def test_airbench_run_sends_question_with_audio_and_skips_text_mode(
    tmp_path: Path,
    server: FakeJudgeServer,
    capsys,
) -> None:
    server.script = lambda body: (200, ["B. a woman"])
    out = tmp_path / "run"
    argv = [
        "--endpoint",
        server.base_url,
        "--endpoint-model",
        "peer",
        "--mode",
        "both",
        "--out",
        str(out),
        "--airbench",
        str(airbench_root(tmp_path)),
        "--subset",
        "airbench_foundation",
        "--no-progress",
    ]
    assert voicebench.main(argv) == 0
    assert "airbench_foundation has no text form" in capsys.readouterr().err
    contents = [body["messages"][-1]["content"] for body in server.requests]
    assert all([p["type"] for p in content] == ["input_audio", "text"] for content in contents)
    assert any("Who is speaking?\nA. a man\nB. a woman" in content[1]["text"] for content in contents)
    modes = json.loads((out / "summary.json").read_text())["sets"]["airbench_foundation"]["modes"]
    assert modes["audio"]["n_answered"] == 2 and modes["audio"]["strict"]["tasks"]
    assert modes["text"]["score"] is None and modes["text"]["status"].startswith("skipped")


def test_manifest_line_that_is_not_utf8_is_named_like_other_bad_rows(tmp_path: Path) -> None:
    from lalm.eval.manifest import load_manifest

    write_clip(tmp_path / "a.wav", 440)
    good = json.dumps({"id": "a", "audio": "a.wav", "prompt": "Which?", "reference": "A"})
    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(good.encode() + b"\n" + b'{"id": "b", "audio": "a.wav", "prompt": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"m\.jsonl:2: not UTF-8 text \(byte 0xe9 at character 45\)"):
        load_manifest(manifest, "quiz", "openbookqa")
    assert [item.id for item in load_manifest(manifest, "quiz", "openbookqa", limit=1).items] == ["a"]
