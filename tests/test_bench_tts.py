"""bench/tts_rtf.py on espeak-ng and flite, one round: both timed, espeak-ng the 1.00x baseline; a missing
engine is skipped with what to install, never a failure."""

from __future__ import annotations

import shutil

import pytest


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_tts_rtf_reports_each_engine_against_espeak(capsys, monkeypatch):
    from lalm.bench.tts_rtf import main

    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "text2wave" else real_which(name))
    main(["--engines", "espeak,flite,festival", "--repeats", "1"])
    captured = capsys.readouterr()
    assert "| espeak (en+m3) |" in captured.out and "| 1.00x |" in captured.out
    assert ("| flite (kal16) |" in captured.out) == (real_which("flite") is not None)
    assert "skipped: festival: the festival TTS engine needs" in captured.err
