"""One error convention for every command: a problem the user must fix is one `error:` line on
stderr and exit status 2, never a traceback. Each command runs as users run it, in a child process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = {
    "train": ["train/align.py", "--config", "configs/no_such.yaml"],
    "train-override": ["train/align.py", "--config", "configs/tiny_align.yaml", "train.stepz=3"],
    "chat": ["-m", "lalm.chat", "--model", "/nonexistent"],
    "serve": ["-m", "lalm.serve", "--config", "configs/tiny.yaml", "model.llm.dtyp=float32"],
    "smoke": ["-m", "lalm.smoke", "--config", "configs/no_such.yaml"],
    "sift": ["-m", "data_gen.sift", "--asr-manifest", "no_such.jsonl", "--out", "{tmp}/o.jsonl",
             "--llm", "x", "--mode", "sift_s"],
    "eval": ["eval/voicebench.py", "--score-file", "no_such.jsonl", "--subset", "mmsu", "--out", "{tmp}/e"],
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("cli")
    # started together: each pays the imports once, in parallel
    running = {
        name: subprocess.Popen(
            [sys.executable, *(a.replace("{tmp}", str(tmp)) for a in args)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for name, args in COMMANDS.items()
    }
    return {name: subprocess.CompletedProcess(p.args, p.wait(), *p.communicate()) for name, p in running.items()}


@pytest.mark.parametrize("name", COMMANDS)
def test_user_error_is_one_line_and_status_2(name: str, outcomes: dict) -> None:
    done = outcomes[name]
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr


def test_messages_name_the_problem(outcomes: dict) -> None:
    assert "configs/no_such.yaml" in outcomes["train"].stderr
    assert "train.stepz: unknown key" in outcomes["train-override"].stderr
    assert "/nonexistent is not a kit checkpoint" in outcomes["chat"].stderr
    assert "model.llm.dtyp: unknown key" in outcomes["serve"].stderr
    assert "no_such.jsonl" in outcomes["sift"].stderr and "no_such.jsonl" in outcomes["eval"].stderr


def test_a_bug_keeps_its_traceback() -> None:
    from lalm.errors import run_command

    def bug() -> None:
        raise ZeroDivisionError("kit bug")

    with pytest.raises(ZeroDivisionError):
        run_command(bug)
