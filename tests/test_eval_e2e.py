"""The harness end to end on a tiny random kit checkpoint and generated local sets: files, summary,
report and plot, resuming, and the errors bad input gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lalm.eval import voicebench
from lalm.eval.models import KitResponder
from lalm.jsonl import read_jsonl_skip_torn_tail
from tests.helpers import write_manifest

MCQ_ROWS = [
    {"id": f"q{i}", "freq": 200 + 100 * i, "prompt": f"Question {i}? A, B, C or D.", "reference": "ABCD"[i]}
    for i in range(4)
] + [{"id": "broken", "audio": "clips/none.wav", "prompt": "Which one? A or B.", "reference": "A"}]
OPEN_ROWS = [{"id": f"o{i}", "freq": 300 + 50 * i, "text": f"Tell me about topic {i}."} for i in range(2)]


def run(*argv: str) -> int:
    return voicebench.main([*argv, "--no-progress", "--max-new-tokens", "4", "--batch-size", "2"])


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Batch sizes the kit model is asked for, to prove what a rerun generates."""
    sizes: list[int] = []
    respond = KitResponder.respond

    def counted(self: KitResponder, requests: list) -> list:
        sizes.append(len(requests))
        return respond(self, requests)

    monkeypatch.setattr(KitResponder, "respond", counted)
    return sizes


def test_audio_and_text_modes_end_to_end(tmp_path: Path, tiny_checkpoint: Path, capsys) -> None:
    data, out = tmp_path / "data", tmp_path / "run"
    quiz = write_manifest(data, MCQ_ROWS, "quiz.jsonl")
    chat = write_manifest(data, OPEN_ROWS, "chat.jsonl")
    model = ["--model", str(tiny_checkpoint), "--out", str(out), "--mode", "both"]
    assert run(*model, "--manifest", str(quiz), "--subset", "quiz", "--scorer", "openbookqa") == 0
    assert run(*model, "--manifest", str(chat), "--subset", "commoneval") == 0
    err = capsys.readouterr().err
    assert "no judge configured" in err and "commoneval" in err
    assert "broken: " in err and "no such audio file" in err

    rows = {r["id"]: r for r in read_jsonl_skip_torn_tail(out / "quiz.audio.jsonl")}
    assert set(rows) == {"q0", "q1", "q2", "q3", "broken"}
    assert rows["broken"]["response"] is None and "no such audio file" in rows["broken"]["error"]
    assert isinstance(rows["q1"]["response"], str) and rows["q1"]["fields"]["reference"] == "B"
    assert set(rows["q1"]["result"]) >= {"pred", "correct", "extracted"}
    text_rows = {r["id"]: r for r in read_jsonl_skip_torn_tail(out / "quiz.text.jsonl")}
    assert text_rows["q2"]["input_text"] == "Question 2? A, B, C or D." and rows["q2"]["input_text"] is None

    summary = json.loads((out / "summary.json").read_text())
    quiz_audio = summary["sets"]["quiz"]["modes"]["audio"]
    assert (quiz_audio["n_items"], quiz_audio["n_answered"], quiz_audio["n_failed"]) == (5, 4, 1)
    assert summary["sets"]["quiz"]["modes"]["text"]["n_answered"] == 5  # text mode needs no audio
    assert quiz_audio["score"] is not None and summary["sets"]["quiz"]["benchmark"] == "local"
    open_audio = summary["sets"]["commoneval"]["modes"]["audio"]
    assert open_audio["score"] is None and open_audio["status"] == "skipped: no judge configured"
    run_record = summary["run"]
    assert run_record["model"]["kind"] == "kit" and run_record["generation"]["max_new_tokens"] == 4
    assert run_record["generation"]["decoding"] == "greedy" and quiz_audio["scoring"]["mode"] == "strict"
    markdown = (out / "summary.md").read_text()
    assert "| quiz | 0-100 |" in markdown and "skipped: no judge configured" in markdown

    assert voicebench.main(["--report", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| set | scale | audio | text | audio/text |" in table
    assert "| commoneval | 1-5 | n/a | n/a |" in table  # skipped, never 0
    assert (out / "gap.png").stat().st_size > 1000


def test_rerun_generates_only_what_is_missing(
    tmp_path: Path, tiny_checkpoint: Path, calls: list[int]
) -> None:
    quiz = write_manifest(tmp_path / "data", MCQ_ROWS)
    argv = [
        "--model",
        str(tiny_checkpoint),
        "--out",
        str(tmp_path / "run"),
        "--mode",
        "audio",
        "--manifest",
        str(quiz),
        "--subset",
        "openbookqa",
    ]
    assert run(*argv) == 0
    assert sum(calls) == 4  # the broken clip never reaches the model
    path = tmp_path / "run" / "openbookqa.audio.jsonl"
    first = {r["id"]: r["response"] for r in read_jsonl_skip_torn_tail(path)}

    calls.clear()
    assert run(*argv) == 0
    assert calls == []  # everything answered: the model is not even loaded

    kept = [r for r in read_jsonl_skip_torn_tail(path) if r["id"] not in ("q1", "q3")]
    path.write_text("".join(json.dumps(r) + "\n" for r in kept) + '{"id": "q0", "resp')  # and a torn line
    assert run(*argv) == 0
    assert sum(calls) == 2
    again = {r["id"]: r["response"] for r in read_jsonl_skip_torn_tail(path)}
    assert again == first  # greedy: the refilled rows match, the kept ones are untouched


def test_a_run_folder_keeps_one_model_setup(tmp_path: Path, tiny_checkpoint: Path, capsys) -> None:
    quiz = write_manifest(tmp_path / "data", MCQ_ROWS[:1])
    argv = [
        "--model",
        str(tiny_checkpoint),
        "--out",
        str(tmp_path / "run"),
        "--mode",
        "text",
        "--manifest",
        str(quiz),
        "--subset",
        "mmsu",
    ]
    assert run(*argv) == 0
    assert voicebench.main([*argv, "--no-progress", "--max-new-tokens", "9"]) == 2
    assert "pass a new --out" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--manifest", "{tmp}/nope.jsonl", "--subset", "openbookqa"], "nope.jsonl: no such manifest"),
        (["--manifest", "{tmp}/m.jsonl", "--subset", "myquiz"], "unknown scorer 'myquiz'"),
        (["--manifest", "{tmp}/m.jsonl", "--subset", "mmsu"], "m.jsonl:2: missing reference or answer"),
        (["--subset", "openbookqa,nosuchset"], "unknown VoiceBench subset(s) nosuchset"),
        (["--subset", "openbookqa", "--data-dir", "{tmp}/vb"], "vb/openbookqa: no such folder"),
    ],
)
def test_bad_input_names_the_file_row_and_fix(
    tmp_path: Path,
    tiny_checkpoint: Path,
    capsys,
    argv: list[str],
    message: str,
) -> None:
    write_manifest(
        tmp_path,
        [{"id": "a", "freq": 300, "prompt": "p", "reference": "A"}, {"id": "b", "freq": 300, "prompt": "p"}],
        "m.jsonl",
    )
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert run("--model", str(tiny_checkpoint), "--out", str(tmp_path / "run"), *argv) == 2
    assert message in capsys.readouterr().err


def test_flag_misuse_is_refused_before_anything_loads(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        voicebench.main(["--model", str(tmp_path), "--out", str(tmp_path / "r")])
    assert "not a kit checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        voicebench.main(
            ["--endpoint", "http://x/v1", "--endpoint-model", "m", "--mode", "cascade", "--out", "r"]
        )
    assert "--mode cascade needs --asr" in capsys.readouterr().err


def test_help_explains_every_flag(capsys) -> None:
    with pytest.raises(SystemExit):
        voicebench.main(["--help"])
    text = capsys.readouterr().out
    for action in voicebench.build_parser()._actions:
        for flag in action.option_strings:
            assert flag in text
        assert action.help, action.option_strings
