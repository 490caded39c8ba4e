"""The kit's one output convention (lalm/console.py): results on stdout, notices and skipped rows
on stderr with their prefixes, progress bars on stderr and sparse in logs."""

from __future__ import annotations

import io
import sys

from lalm import console


def test_messages_go_to_their_streams_with_their_prefixes(capsys):
    console.say("result line")
    console.note("something to know")
    console.skipped("data.jsonl:7", "no `audio` field")
    out, err = capsys.readouterr()
    assert out == "result line\n"
    assert err.splitlines() == ["note: something to know", "skipped: data.jsonl:7: no `audio` field"]


def test_progress_bars_are_sparse_where_stderr_is_a_file(monkeypatch):
    log = io.StringIO()  # not a terminal, as a log file or CI is
    monkeypatch.setattr(sys, "stderr", log)
    with console.progress(total=1000, desc="work", unit="row") as bar:
        for i in range(1000):
            bar.update()
            bar.set_postfix(step=i, refresh=False)  # how the kit's loops show their numbers
    assert bar.mininterval == bar.maxinterval == console.LOG_INTERVAL_S
    assert log.getvalue().count("\r") <= 3  # the opening, maybe one redraw, the close; not 1000
    assert "work: 100%" in log.getvalue()


def test_progress_on_a_terminal_redraws_as_tqdm_does(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    with console.progress(total=3, desc="work", unit="row") as bar:
        bar.update(3)
    assert bar.mininterval < 1 and "work: 100%" in sys.stderr.getvalue()  # tqdm's own default
