"""bench/feature_cache_fill.py at tiny shape: both orders run on the same clips and are reported."""

from lalm.bench.feature_cache_fill import main


def test_cache_fill_bench_reports_both_orders(capsys):
    main(["--tiny", "--clips", "6", "--batch-seconds", "8"])
    out = capsys.readouterr().out
    assert "| file order |" in out and "| shortest first |" in out and "1.00x" in out
