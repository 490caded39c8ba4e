"""The README's install command brings everything the test suite uses, so its test command runs
the whole suite on a fresh machine (CI runs exactly those two commands)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith("#")]
    assert "bash install.sh" in readme and "python -m pytest -q" in readme
    assert "bash install.sh" in ci and ci[-1] == "python -m pytest -q"


def test_install_brings_every_system_package_a_test_skips_without() -> None:
    wanted = set()
    for test in (ROOT / "tests").glob("test_*.py"):
        for match in re.finditer(r"apt-get install ([a-z0-9][a-z0-9 -]*)", test.read_text()):
            wanted.update(match.group(1).split())
    installed = set(re.findall(r"missing\+=\(([a-z0-9-]+)\)", (ROOT / "install.sh").read_text()))
    assert wanted and wanted <= installed, f"install.sh does not install {sorted(wanted - installed)}"
