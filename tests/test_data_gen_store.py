"""Crash-safe files: torn tails are cut back to the last whole line, atomic writes never leave half a file."""

from __future__ import annotations

import pytest

from lalm.data_gen.batching import length_sorted_batches
from lalm.data_gen.rows import Shard
from lalm.data_gen.store import safe_name
from lalm.jsonl import (
    appending,
    atomic_open,
    iter_lines,
    read_jsonl,
    read_jsonl_skip_torn_tail,
    read_lines,
    repair_tail,
)


def test_repair_tail_cuts_only_the_torn_line(tmp_path):
    path = tmp_path / "out.jsonl"
    with appending(path) as write:
        write([{"id": 1}, {"id": 2}])
    whole = path.read_bytes()
    assert repair_tail(path) == 0
    path.write_bytes(whole + b'{"id": 3, "response": "' + b"x" * 200_000)  # torn line longer than a scan block
    assert repair_tail(path) == 200_000 + len(b'{"id": 3, "response": "')
    assert path.read_bytes() == whole and read_jsonl(path) == [{"id": 1}, {"id": 2}]
    path.write_bytes(b'{"id": 1, "resp')  # nothing whole at all
    repair_tail(path)
    assert path.read_bytes() == b""
    assert repair_tail(tmp_path / "absent.jsonl") == 0


def test_a_line_that_is_not_utf8_costs_that_line_only_and_is_named(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes('{"id": "é"}\n\n'.encode() + b'{"id": "caf\xe9"}\n' + b'{"id": 3}\n')
    lines = list(read_lines(path))
    assert [(n, error) for n, _, error in lines] == [(1, None), (3, "not UTF-8 text (byte 0xe9 at character 12)"),
                                                      (4, None)]
    assert lines[0].text == '{"id": "é"}\n' and lines[1].text == '{"id": "caf\ufffd"}\n'
    with pytest.raises(ValueError, match=r"rows.jsonl:3: not UTF-8 text \(byte 0xe9 at character 12\)"):
        list(iter_lines(path))
    with pytest.raises(ValueError, match=r"rows.jsonl:3: not UTF-8"):
        read_jsonl(path)


def test_a_torn_tail_cut_inside_a_character_is_still_a_torn_tail(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"id": 1}\n' + '{"id": 2, "response": "é'.encode()[:-1])  # killed mid-character
    assert read_jsonl_skip_torn_tail(path) == [{"id": 1}]


def test_atomic_open_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "merged.jsonl"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_open(path) as f:
        f.write("half of the new")
        raise RuntimeError("killed")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["merged.jsonl"]


def test_safe_names_never_collide():
    assert safe_name("utt_001") == "utt_001"
    assert safe_name("a/b") != safe_name("a_b") and "/" not in safe_name("a/b")
    assert safe_name("..") not in {".", ".."}


def test_shards_partition_lines_and_batches_sort_within_windows():
    shards = [Shard.parse(f"{i}/3") for i in range(3)]
    assert [[n for n in range(1, 10) if s.owns(n)] for s in shards] == [[1, 4, 7], [2, 5, 8], [3, 6, 9]]
    with pytest.raises(ValueError, match="expected I/N"):
        Shard.parse("3/3")
    batches = list(length_sorted_batches(iter(["a", "ccc", "bb", "dddd", "e"]), len, batch_size=2, window=3))
    assert batches == [["ccc", "bb"], ["a"], ["dddd", "e"]]
