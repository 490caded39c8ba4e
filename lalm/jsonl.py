"""Crash-safe JSON and JSONL files: whole-line appends, torn-tail handling, atomic rewrites.

Long runs (data generation, evaluation) get killed: OOM, preemption, Ctrl-C. Their output is therefore
appended one batch at a time as whole lines in a single write, flushed and fsynced, so a kill loses at
most the batch in flight; the only damage a kill can leave is a torn last line (no trailing newline).
There are two ways to deal with it, and both are kept on purpose:

- `repair_tail` cuts the torn line off the file in place (a resuming writer does this before it
  appends; `append_jsonl` does it by itself), after which `iter_jsonl` / `read_jsonl` read the file
  strictly: any line that is not valid JSON is an error naming it.
- `read_jsonl_skip_torn_tail` leaves the file alone and skips the torn line while reading, for readers
  that may run while a file is still damaged (or missing) and must not modify it.

Input files that people and other tools write (manifests, training sources) can also hold a line that
is not UTF-8. `read_lines` decodes each line on its own and hands such a line back with its error, so a
caller sets it aside (a reject, a skip) the way it sets aside bad JSON; the strict readers report it
with file and line.

Files that are rewritten as a whole (rejects, summaries, merged outputs, scored results) go through a
temporary sibling file and an atomic rename, so a reader sees the old or the new file, never half a file.
"""

from __future__ import annotations

import gzip
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NamedTuple

TOO_DEEP = "JSON nested too deeply (arrays or objects inside each other thousands of levels down)"


def dumps(row: Any) -> str:
    """One JSON line (without the newline); non-ASCII text stays readable rather than \\u-escaped."""
    return json.dumps(row, ensure_ascii=False)


# --- reading -------------------------------------------------------------------------------------


class Line(NamedTuple):
    """One non-blank line of a file: its 1-based number, its text with the newline, and why it is unusable.

    `error` is None for a readable line; otherwise it says what is wrong (bytes that are not UTF-8) and
    `text` shows the line with those bytes replaced, so that a caller can still tell a torn last line
    (no newline) from a bad line in the middle.
    """

    number: int
    text: str
    error: str | None = None


def read_lines(path: str | Path) -> Iterator[Line]:
    """Each non-blank line of a text or .gz file, decoded as UTF-8 on its own.

    One undecodable line must cost that line only (a reject, a skip, an error naming it), not the whole
    file: the file is read with `surrogateescape`, which keeps bad bytes as lone surrogates instead of
    raising mid-file, and each line is checked for them. Numbers count blank lines too, so a message
    points at the line a person sees in an editor.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="surrogateescape") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                line.encode("utf-8")
            except UnicodeEncodeError as err:
                byte = ord(line[err.start]) - 0xDC00  # surrogateescape maps byte b to U+DC00 + b
                text = line.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                yield Line(number, text, f"not UTF-8 text (byte 0x{byte:02x} at character {err.start + 1})")
                continue
            yield Line(number, line)


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text with its newline) of each non-blank line; a line that is not UTF-8 is
    an error naming the file and line (see `read_lines` for readers that set such lines aside)."""
    for number, text, error in read_lines(path):
        if error:
            raise ValueError(f"{path}:{number}: {error}; re-encode the file as UTF-8 or delete that line")
        yield number, text


def parse_object(line: str) -> dict:
    """One JSONL line that must hold a JSON object (a row); the ValueError says why it does not."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON ({err})") from err
    except RecursionError as err:  # json's decoder recurses once per level of nesting
        raise ValueError(TOO_DEEP) from err
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")  # noqa: TRY004 (bad data, one error type with bad JSON)
    return value


def _parse(path: str | Path, number: int, line: str, hint: str = "") -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{number}: not valid JSON ({err}){hint}") from err
    except RecursionError as err:
        raise ValueError(f"{path}:{number}: {TOO_DEEP}") from err


def iter_jsonl(path: str | Path) -> Iterator[dict]:
    """The rows of a JSONL (or .jsonl.gz) file that must be intact, one at a time, without loading it all.

    Strict: a torn last line is an error like any other bad line, so call `repair_tail` first where a
    killed writer may have left one.
    """
    for number, line in iter_lines(path):
        yield _parse(path, number, line)


def read_jsonl(path: str | Path) -> list[dict]:
    """All rows of a JSONL file that must be intact (see `iter_jsonl`)."""
    return list(iter_jsonl(path))


def read_jsonl_skip_torn_tail(path: str | Path) -> list[dict]:
    """All rows of a JSONL file that a killed writer may have left torn, without modifying the file.

    A last line with no newline is a partial write and is skipped (the next `append_jsonl` cuts it); a
    bad line anywhere else is an error naming it. A missing file has no rows yet.
    """
    if not Path(path).exists():
        return []
    rows = []
    # read_lines, not iter_lines: a kill can tear a line inside a multi-byte character, and that torn
    # tail must be skipped like any other, not reported as bad text.
    for number, line, error in read_lines(path):
        if not line.endswith("\n"):  # only the last line can lack its newline: a torn write
            break
        if error:
            raise ValueError(f"{path}:{number}: {error}; fix or delete that line and rerun")
        rows.append(_parse(path, number, line, "; fix or delete that line and rerun"))
    return rows


def read_json(path: str | Path) -> Any:
    """A JSON file's value; a broken file is an error naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    except RecursionError as err:
        raise ValueError(f"{path}: {TOO_DEEP}") from err


# --- appending -----------------------------------------------------------------------------------


def repair_tail(path: str | Path) -> int:
    """Cut a torn last line (no trailing newline) that a killed writer left; returns the bytes dropped.

    Scans back from the end in blocks, so repairing a large output costs little; the cut is fsynced so a
    second kill cannot bring the torn line back. A missing or empty file needs no repair.
    """
    path = Path(path)
    if not path.exists():
        return 0
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        # Scan back in blocks for the last newline; everything after it is the torn line.
        end = size
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            block = f.read(end - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            end = start
        else:
            keep = 0
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return size - keep


def _lines(rows: Iterable[Any]) -> str:
    return "".join(dumps(row) + "\n" for row in rows)


def _write_synced(f: IO[str], text: str) -> None:
    """One write of whole lines, then flush and fsync: a kill loses this batch at most, never earlier ones."""
    f.write(text)
    f.flush()
    os.fsync(f.fileno())


@contextmanager
def appending(path: str | Path) -> Iterator[Callable[[Iterable[dict]], None]]:
    """A `write(rows)` that appends a batch of rows to a JSONL file as one write + flush + fsync.

    Keeps the file open across batches, for a writer that appends many; it does not repair a torn tail,
    so a resuming caller runs `repair_tail` before opening.
    """
    with open(path, "a", encoding="utf-8") as f:

        def write(rows: Iterable[dict]) -> None:
            text = _lines(rows)
            if text:
                _write_synced(f, text)

        yield write


def append_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    """Append ``rows`` to a JSONL file as whole lines in one synced write, cutting a torn tail first.

    Self-contained (creates missing folders, repairs the tail, opens and closes the file) for a writer
    that appends now and then; nothing is written, and no file created, when there are no rows.
    """
    text = _lines(rows)
    if not text:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    repair_tail(path)
    with open(path, "a", encoding="utf-8") as f:
        _write_synced(f, text)


# --- atomic rewrites -----------------------------------------------------------------------------


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """A file that replaces `path` only once it is complete: readers see the old or the new file, never a mix.

    The temporary file is a hidden sibling (same file system, so the rename is atomic) named per process
    and thread, so concurrent writers never share one; it is removed if writing fails. Missing parent
    folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
    try:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Remove the temporary siblings `atomic_open` left for `path` when its writer was killed (kill -9
    skips the cleanup); those of a writer still running are kept. Returns what was removed."""
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{glob_escape(path.name)}.tmp*"):
        pid = tmp.name.rpartition(".tmp")[2].partition("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def glob_escape(name: str) -> str:
    """`name` with glob's special characters taken literally."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Replace a text (``str``) or binary (``bytes``) file as a whole (see `atomic_open`)."""
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def write_jsonl_atomic(path: str | Path, rows: Iterable[dict]) -> None:
    """Replace a JSONL file as a whole; rows are streamed, so a generator of many rows is fine."""
    with atomic_open(path) as f:
        for row in rows:
            f.write(dumps(row) + "\n")


def write_json_atomic(path: str | Path, value: Any) -> None:
    """Replace a JSON file as a whole, indented for people to read."""
    write_atomic(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")
