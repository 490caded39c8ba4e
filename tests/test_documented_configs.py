"""Every `--config configs/*.yaml` command the README, the docs and the yaml files themselves show
validates as written: training commands as training configs (model, data, train, stages), the
model-only commands (smoke, chat, serve, eval) as model configs. Validation loads no weights."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from lalm.config import Config, load_config
from lalm.train.config import AlignConfig

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "configs").glob("*.yaml"))]
COMMAND = re.compile(r"(?:python|torchrun)\b[^\n`|]*--config\s+configs/[\w.-]+\.yaml[^\n`|]*")


def documented_commands() -> list[tuple[str, str]]:
    found = []
    for doc in DOCUMENTS:
        for line in doc.read_text(encoding="utf-8").splitlines():
            for match in COMMAND.finditer(line):
                found.append((doc.relative_to(ROOT).as_posix(), match.group(0).strip()))
    return sorted(set(found))


def test_every_config_file_is_documented_by_a_command() -> None:
    named = {re.search(r"configs/([\w.-]+\.yaml)", c).group(1) for _, c in documented_commands()}
    assert named == {p.name for p in (ROOT / "configs").glob("*.yaml")}


@pytest.mark.parametrize(("where", "command"), documented_commands())
def test_documented_config_command_validates(where: str, command: str) -> None:
    words = shlex.split(command.replace("\\", " "))
    path = words[words.index("--config") + 1]
    overrides = [w for w in words[words.index("--config") + 2 :] if "=" in w and not w.startswith("-")]
    cls = AlignConfig if "train/align.py" in command else Config
    load_config(ROOT / path, overrides, cls)  # raises ConfigError listing every problem
