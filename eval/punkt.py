"""Make NLTK's English punkt model available: ``python -m eval.punkt``.

IFEval, as VoiceBench runs it, counts sentences with NLTK's trained punkt model and capital words
with ``nltk.word_tokenize`` (which uses it too), so ifeval's ``parity`` mode needs that model. NLTK
ships it as downloadable data (``punkt_tab``), not in the pip package. This command finds it, else
downloads it with NLTK's downloader, else, where only a package index is reachable, takes the same
files from the ``llama-index-core`` wheel, which carries them as plain data. It installs into
``<sys.prefix>/nltk_data`` (a path NLTK searches), so a virtualenv keeps its own copy.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from lalm.errors import UserError, run_command

RESOURCE = "tokenizers/punkt_tab/english/"
WHEEL_PACKAGE = "llama-index-core"
WHEEL_PREFIX = "llama_index/core/_static/nltk_cache/tokenizers/punkt_tab/"


def find() -> Path | None:
    """Where NLTK finds the English punkt_tab model, or None (also when nltk is not installed)."""
    try:
        import nltk

        return Path(str(nltk.data.find(RESOURCE)))
    except (ImportError, LookupError):
        return None


def _from_downloader(target: Path) -> bool:
    # In a child process: NLTK's downloader prints its failures (offline) even when asked to be quiet.
    done = subprocess.run(
        [sys.executable, "-m", "nltk.downloader", "-q", "-d", str(target), "punkt_tab"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0


def _from_wheel(target: Path) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", WHEEL_PACKAGE, "-d", tmp],
            capture_output=True,
            text=True,
            check=False,  # a failed download means "try elsewhere", said by the caller
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode or not wheels:
            return False
        with zipfile.ZipFile(wheels[0]) as wheel:
            members = [m for m in wheel.namelist() if m.startswith(WHEEL_PREFIX) and not m.endswith("/")]
            for member in members:
                dest = target / "tokenizers" / "punkt_tab" / member[len(WHEEL_PREFIX) :]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(wheel.read(member))
        return bool(members)


def ensure(target: Path | None = None) -> Path:
    """The punkt model's folder, fetched into ``target`` (default ``<sys.prefix>/nltk_data``) when
    missing; raises RuntimeError when no source worked."""
    found = find()
    if found:
        return found
    import nltk

    target = target or Path(sys.prefix) / "nltk_data"
    if str(target) not in nltk.data.path:
        nltk.data.path.append(str(target))
    for source in (_from_downloader, _from_wheel):
        if source(target) and (found := find()):
            return found
    raise RuntimeError(
        f"could not fetch NLTK's punkt_tab into {target}: no network to NLTK's data server and no "
        f"{WHEEL_PACKAGE} wheel from the package index; copy a punkt_tab folder to "
        f"{target}/tokenizers/punkt_tab or point NLTK_DATA at one"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.punkt", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, help="install here instead of <sys.prefix>/nltk_data")
    args = parser.parse_args(argv)
    return run_command(lambda: install(args.dir))


def install(folder: Path | None) -> None:
    try:
        import nltk  # noqa: F401
    except ImportError:
        raise UserError("nltk is not installed (pip install nltk)") from None
    try:
        print(f"punkt_tab: {ensure(folder)}")
    except RuntimeError as err:
        raise UserError(str(err)) from err


if __name__ == "__main__":
    sys.exit(main())
