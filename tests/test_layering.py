"""The layers of docs/architecture.md, enforced: no module imports a module of a higher layer.

The diagram in docs/architecture.md is the spec: each layer's line names folders and files, and every
module of the kit must fall under one of them (a new module without a layer fails here, so the diagram
stays complete). Imports are read with `ast`, deferred (in-function) ones included, and resolved to
files through pyproject's package-dir table (`lalm.adapters` is `adapters/`). The few deliberate
upward imports are listed in ALLOWED with the reason each is one.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
#: Layers from the bottom up, as the diagram's lines start.
LAYER_NAMES = ("base", "parts", "model", "inference", "commands")
#: (importer, imported) path prefixes allowed to point upwards, and why.
ALLOWED = {
    (
        "lalm/config.py",
        "lalm/encoders/",
    ): "validation looks names and options up in the registries, at call time",
    ("lalm/config.py", "adapters/"): "validation looks names and options up in the registries, at call time",
    ("lalm/config.py", "lalm/recognizers/"): "validation looks names up in the registries, at call time",
    ("lalm/audio.py", "lalm/encoders/base.py"): "SAMPLE_RATE, the kit's one rate, is the encoder interface's",
    (
        "adapters/ctc.py",
        "lalm/lm_fusion.py",
    ): "CTC decoding scores hypotheses with the frozen LLM, at call time",
    ("lalm/recognizers/phoneme_ctc.py", "lalm/lm_fusion.py"): "as ctc.py: the LLM's word search at decode time",
}


def doc_layers(doc: str) -> dict[str, int]:
    """Path prefix -> layer rank (0 = base), read from the diagram's code block."""
    block = doc.split("```", 2)[1]
    table, rank = {}, None
    for line in block.splitlines():
        words = line.split()
        if words and words[0] in LAYER_NAMES:
            rank = LAYER_NAMES.index(words[0])
        bare = re.sub(r"\([^)]*\)", " ", line)  # notes in parentheses are not paths
        for path in re.findall(r"(?<![\w/.])([\w.]+/(?:[\w.]+/)*(?:[\w.]+\.py)?)", bare):
            if rank is None:
                raise ValueError(f"architecture diagram: {path} comes before any layer name")
            table[path] = rank
    return table


def package_dirs(root: Path) -> dict[str, str]:
    """Import package -> folder, from pyproject (plus `lalm` itself)."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    dirs = dict(pyproject["tool"]["setuptools"].get("package-dir", {}))
    return {"lalm": "lalm", **dirs}


def module_file(module: str, dirs: dict[str, str], root: Path) -> str | None:
    """The repo-relative file of a `lalm...` module, or None for anything outside the kit."""
    package = max((p for p in dirs if module == p or module.startswith(p + ".")), key=len, default=None)
    if package is None:
        return None
    rest = module[len(package) :].lstrip(".").replace(".", "/")
    base = f"{dirs[package]}/{rest}".rstrip("/")
    for candidate in (f"{base}.py", f"{base}/__init__.py"):
        if (root / candidate).is_file():
            return candidate
    return None


def file_module(path: str, dirs: dict[str, str]) -> str:
    """The import name of a repo-relative file (inverse of module_file)."""
    folder, _, rest = path.partition("/")
    package = next(p for p, d in dirs.items() if d == folder)
    parts = [package, *Path(rest).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: str, dirs: dict[str, str], root: Path) -> list[tuple[int, str]]:
    """(line, imported file) of every import of a kit module in the file, deferred ones included."""
    tree = ast.parse((root / path).read_text(), path)
    here = file_module(path, dirs).split(".")
    package = here if path.endswith("__init__.py") else here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(filter(None, [base, node.module]))
            # `from pkg import sub` imports the submodule when there is one, else pkg itself.
            targets = [
                f"{module}.{a.name}" if module_file(f"{module}.{a.name}", dirs, root) else module
                for a in node.names
            ]
        else:
            continue
        for target in targets:
            file = module_file(target, dirs, root)
            if file is not None and file != path and (node.lineno, file) not in found:
                found.append((node.lineno, file))
    return found


def layer_of(path: str, table: dict[str, int]) -> int | None:
    prefix = max(
        (p for p in table if path == p or (p.endswith("/") and path.startswith(p))), key=len, default=None
    )
    return None if prefix is None else table[prefix]


def kit_files(root: Path, dirs: dict[str, str]) -> list[str]:
    return sorted(str(f.relative_to(root)) for d in dirs.values() for f in (root / d).rglob("*.py"))


def violations(root: Path, allowed: dict[tuple[str, str], str] = ALLOWED) -> list[str]:
    """Every upward import and every module the diagram leaves without a layer, as readable lines."""
    table = doc_layers((root / "docs" / "architecture.md").read_text())
    dirs = package_dirs(root)
    problems = []
    for path in kit_files(root, dirs):
        rank = layer_of(path, table)
        if rank is None:
            problems.append(f"{path}: in no layer of docs/architecture.md; add it to the diagram")
            continue
        for line, target in imports(path, dirs, root):
            target_rank = layer_of(target, table)
            if target_rank is None or target_rank <= rank:
                continue
            if any(path.startswith(a) and target.startswith(b) for a, b in allowed):
                continue
            problems.append(
                f"{path}:{line}: {LAYER_NAMES[rank]} imports {target} ({LAYER_NAMES[target_rank]}); "
                "lower layers never import higher ones (docs/architecture.md)"
            )
    return problems


def test_main_keeps_its_layers():
    assert violations(ROOT) == []


def test_the_diagram_names_the_layers_of_the_known_modules():
    table = doc_layers((ROOT / "docs" / "architecture.md").read_text())
    expected = {
        "lalm/config.py": "base",
        "lalm/encoders/hf_encoder.py": "parts",
        "lalm/phonemes.py": "parts",
        "lalm/lm_fusion.py": "model",
        "lalm/streaming.py": "inference",
        "eval/probe.py": "commands",
        "train/align.py": "commands",
        "demo/run.py": "commands",
    }
    assert {p: LAYER_NAMES[layer_of(p, table)] for p in expected} == expected


def write_tree(root: Path, files: dict[str, str]) -> Path:
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "architecture.md").write_text(
        "# layers\n\n```\ncommands     eval/\nmodel        lalm/model.py\n"
        "base         lalm/config.py   lalm/paths.py\n             lalm/__init__.py\n```\n"
    )
    (root / "pyproject.toml").write_text('[tool.setuptools.package-dir]\n"lalm.eval" = "eval"\n')
    for name, text in {"lalm/__init__.py": "", "eval/__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_an_upward_import_fails_and_names_the_line(tmp_path):
    root = write_tree(
        tmp_path,
        {
            "eval/probe.py": "from lalm.model import LALM\nfrom lalm import paths\n",  # downward: fine
            "lalm/model.py": "from lalm.config import X\n",
            "lalm/paths.py": "import os\n",
            # deferred, still upward
            "lalm/config.py": "import json\n\n\ndef late():\n    from lalm.eval import probe\n",
        },
    )
    assert violations(root, allowed={}) == [
        (
            "lalm/config.py:5: base imports eval/probe.py (commands); lower layers never import higher ones "
            "(docs/architecture.md)"
        )
    ]
    (root / "lalm/paths.py").write_text("from . import model\n")  # relative imports resolve too
    assert violations(root, allowed={})[1].startswith("lalm/paths.py:1: base imports lalm/model.py (model)")
    assert (
        violations(root, allowed={("lalm/config.py", "eval/"): "why", ("lalm/paths.py", "lalm/model"): "why"})
        == []
    )


def test_a_module_outside_the_diagram_fails(tmp_path):
    root = write_tree(
        tmp_path,
        {"lalm/model.py": "", "lalm/paths.py": "", "lalm/config.py": "", "lalm/newcomer.py": "x = 1\n"},
    )
    assert violations(root) == [
        "lalm/newcomer.py: in no layer of docs/architecture.md; add it to the diagram"
    ]
