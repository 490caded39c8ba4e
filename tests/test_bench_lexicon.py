"""bench/lexicon_nearest.py at a small size: the three searches agree and are reported."""

import pytest

from lalm.phonemes import WORDNET

pytest.importorskip("rapidfuzz")


def test_lexicon_bench_reports_all_searches(capsys):
    from lalm.phonemes import Phonemizer, PhonemizerError

    try:
        Phonemizer()
    except PhonemizerError:
        pytest.skip("espeak-ng's library is not installed")
    if not WORDNET.is_dir():
        pytest.skip("wordnet-base is not installed")
    from lalm.bench.lexicon_nearest import main

    main(["--words", "3000", "--queries", "30"])
    out = capsys.readouterr().out
    assert "results identical" in out
    assert "| full scan (naive) |" in out and "| length buckets |" in out and "1.00x" in out
