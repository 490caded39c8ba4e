"""The crash-safe JSONL helpers of ``lalm.jsonl`` as the evaluation runner uses them. (The evaluation
tests' shared clips and manifests are in tests/helpers.py, their fixtures in conftest.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lalm.jsonl import append_jsonl, read_jsonl_skip_torn_tail, write_jsonl_atomic

SR = 16_000




def test_store_skips_a_torn_last_line_and_the_next_append_cuts_it(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    append_jsonl(path, [{"id": "a"}, {"id": "b"}])
    with open(path, "a") as f:
        f.write('{"id": "c", "resp')  # a kill in the middle of a write
    assert [r["id"] for r in read_jsonl_skip_torn_tail(path)] == ["a", "b"]
    append_jsonl(path, [{"id": "d"}])
    assert [r["id"] for r in read_jsonl_skip_torn_tail(path)] == ["a", "b", "d"]


def test_store_names_a_broken_line_in_the_middle(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": 1}\nnot json\n{"id": 2}\n')
    with pytest.raises(ValueError, match=r"rows.jsonl:2"):
        read_jsonl_skip_torn_tail(path)


def test_store_rewrites_atomically(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    write_jsonl_atomic(path, [{"id": "x", "text": "é"}])
    write_jsonl_atomic(path, [{"id": "y"}])
    assert read_jsonl_skip_torn_tail(path) == [{"id": "y"}]
    assert [p.name for p in tmp_path.iterdir()] == ["rows.jsonl"]  # no temporary file left behind
