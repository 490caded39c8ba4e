"""Installed, the kit is one import package (`lalm`) plus `lalm-*` commands, and collides with nothing:
no generic top-level package (`adapters`, `train`, `eval`, ...) lands in site-packages. The wheel is
built from a copy of the checkout and installed into a folder of its own; the commands run from there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("lalm", "adapters", "data_gen", "train", "eval", "demo", "bench", "configs")
SHIPPED_DATA = ("lalm/configs/tiny.yaml", "lalm/web/index.html", "lalm/recognizers/data/phonemes_en-us.txt",
                "lalm/demo/data/eval_questions.jsonl", "lalm/eval/scoring/data/voicebench_mcq.json",
                "lalm/bench/gpu_all.sh")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The kit's wheel, installed without dependencies (they are the test environment's) into a folder."""
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    for name in FOLDERS:
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            str(source), "-w", str(work / "wheel")], capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stderr
    (wheel,) = (work / "wheel").glob("*.whl")
    target = work / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return target


def run_installed(target: Path, *command: str) -> subprocess.CompletedProcess:
    """Run with the installed copy first on the path, from a folder that is not the checkout."""
    env = {**os.environ, "PYTHONPATH": str(target)}
    return subprocess.run(command, cwd=target.parent, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_the_wheel_holds_one_package_and_its_data(installed) -> None:
    (wheel,) = (installed.parent / "wheel").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"lalm"}
    assert set(SHIPPED_DATA) <= set(names)


def test_installed_kit_imports_from_itself_and_claims_no_generic_name(installed) -> None:
    probe = ("import importlib.util, lalm, lalm.adapters, lalm.train.align, lalm.eval.voicebench\n"
             "from lalm.paths import kit_config\n"
             "print(lalm.__file__); print(lalm.adapters.__file__); print(kit_config('tiny.yaml'))\n"
             "print([n for n in ('adapters', 'train', 'eval', 'demo', 'bench', 'data_gen', 'configs')\n"
             "       if importlib.util.find_spec(n)])")
    done = run_installed(installed, sys.executable, "-c", probe)
    assert done.returncode == 0, done.stderr
    package, adapters, config, generic = done.stdout.splitlines()
    for path in (package, adapters, config):
        assert Path(path).is_relative_to(installed), path
    assert Path(config).is_file()
    assert generic == "[]"


@pytest.mark.parametrize("command", ["lalm-sift", "lalm-synthesize", "lalm-corpus", "lalm-merge", "lalm-align",
                                     "lalm-eval", "lalm-probe", "lalm-encoder-bench", "lalm-chat", "lalm-serve", "lalm-smoke", "lalm-demo"])
def test_every_installed_command_explains_itself(installed, command) -> None:
    done = run_installed(installed, str(installed / "bin" / command), "--help")
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout and len(done.stdout.splitlines()) > 5


def test_an_installed_command_keeps_the_error_convention(installed) -> None:
    done = run_installed(installed, str(installed / "bin" / "lalm-align"), "--config", "no/such.yaml")
    assert done.returncode == 2 and done.stderr.startswith("error:") and "no/such.yaml" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_package_folder_is_listed_for_installation() -> None:
    """A new subpackage (a folder with __init__.py) that pyproject does not list would be missing
    from an installed kit while working in the checkout."""
    import tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    where = {"lalm": "lalm", **setup["package-dir"]}
    found = set()
    for package, folder in where.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *rel)))
    assert found == set(setup["packages"])
