"""How every command of the kit talks to its user: one convention.

- **Results** (tables, summaries, where the files went) go to stdout: plain ``print`` once the work
  is done, or ``say`` while bars may be running. Stdout stays clean enough to pipe.
- **Notices** (something the user should know; nothing failed) go to stderr as ``note: ...``.
- **Bad rows** left out of a run go to stderr as ``skipped: FILE:LINE: reason``; the run goes on.
- **Progress** is a tqdm bar on stderr from ``progress``. Where stderr is not a terminal (a log
  file, CI) the bar redraws at most every 30 s, so a log holds a few lines, not thousands.
- **Errors** the user must fix end the command through ``lalm.errors.run_command`` as
  ``error: ...`` (exit status 2).

Everything here writes through ``tqdm.write`` so a message never tears a bar in half. The one
exception is the server (``lalm.serve``): a long-running service logs with ``logging`` (time stamps,
levels, one line per request), as services do.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

LOG_INTERVAL_S = 30.0  # a bar's redraw interval when stderr is a file


def say(text: str) -> None:
    """A result line on stdout, safe while a bar is running."""
    tqdm.write(text, file=sys.stdout)
    sys.stdout.flush()


def note(text: str) -> None:
    """A notice on stderr: ``note: <text>``."""
    tqdm.write(f"note: {text}", file=sys.stderr)


def skipped(where: str, reason: str) -> None:
    """A row left out of the run: ``skipped: <where>: <reason>`` (where: ``FILE:LINE`` or an id)."""
    tqdm.write(f"skipped: {where}: {reason}", file=sys.stderr)


def progress(iterable: Any = None, *, desc: str, unit: str, **kwargs: Any) -> tqdm:
    """The kit's progress bar: on stderr, redrawn sparsely where stderr is not a terminal."""
    if not _is_terminal(sys.stderr):  # tqdm's monitor would otherwise redraw every maxinterval (10 s)
        kwargs.setdefault("mininterval", LOG_INTERVAL_S)
        kwargs.setdefault("maxinterval", LOG_INTERVAL_S)
    return tqdm(iterable, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, **kwargs)


def _is_terminal(stream: Any) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False
