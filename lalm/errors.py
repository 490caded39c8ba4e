"""One error convention for every command of the kit.

A problem the user must fix (a flag, a file, a config, a data row that stops the run) prints one
line, ``error: <what is wrong and how to fix it>``, on stderr and exits with status 2; Ctrl-C
exits with status 130 after a one-line notice. Anything else is a bug in the kit and keeps its
traceback (status 1), so it can be reported. Every ``main`` of the kit runs through
``run_command``; the error types the user can cause subclass ``UserError`` (``ConfigError``,
``AudioError``, eval's ``DataError``, ...), and a missing or unreadable path (``FileNotFoundError``,
``PermissionError``, ...) counts too, because commands only open paths the user named.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

USER_EXIT = 2
INTERRUPTED_EXIT = 130


class UserError(Exception):
    """A problem the user must fix; its message says what and how."""


# FileExistsError: a folder the user named (`--out`) is a file.
PATH_ERRORS: tuple[type[Exception], ...] = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
                                            PermissionError)


def run_command(job: Callable[[], Any], errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run a command's ``job`` under the convention above; returns the exit status. ``errors`` adds
    error types that count as the user's for this command (e.g. a data tool's ``ValueError``)."""
    try:
        result = job()
    except (UserError, *PATH_ERRORS, *errors) as err:
        print(f"error: {err}", file=sys.stderr)
        return USER_EXIT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT
    return result if isinstance(result, int) else 0
