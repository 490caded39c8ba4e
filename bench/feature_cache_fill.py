"""Feature cache fill: clips encoded in file order (naive) against shortest first.

    python bench/feature_cache_fill.py                       # Whisper tiny.en (offline package), 300 clips
    python bench/feature_cache_fill.py --tiny --clips 40     # random tiny Whisper: seconds, checks the path

Training encodes every clip once (`train.feature_cache.FeatureCache.fill`), in batches of
`batch_seconds` of padded audio. Clips in file order have mixed lengths, so each batch pads to its
longest clip; with the clips' durations the fill goes shortest first and pads little. Prints clips/s
of both on the same clips (1-12 s, gamma-distributed like a short-utterance corpus).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from lalm.bench.common import report, synthetic_corpus


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=300, help="clips to encode (default 300)")
    parser.add_argument("--batch-seconds", type=float, default=120.0, help="padded audio per batch (default 120)")
    parser.add_argument("--tiny", action="store_true", help="a random tiny Whisper instead of tiny.en")
    args = parser.parse_args(argv)

    from lalm import LALM, load_config
    from lalm.paths import kit_config
    from lalm.train.feature_cache import FeatureCache

    config = kit_config("tiny.yaml" if args.tiny else "offline_small.yaml")
    model = LALM(load_config(config).model).eval()
    work = Path(tempfile.mkdtemp(prefix="cache_fill_"))
    try:
        manifest = synthetic_corpus(work / "clips", args.clips, min_s=1.0, max_s=12.0, mean_s=3.5)
        import json

        rows = [json.loads(line) for line in manifest.read_text().splitlines()]
        files = [str(work / "clips" / r["audio"]) for r in rows]
        durations = {f: r["duration"] for f, r in zip(files, rows)}
        results = []
        for name, given in [("file order", None), ("shortest first", durations)]:
            cache = FeatureCache(work / name.replace(" ", "_"), {n: b.encoder for n, b in model.branches.items()})
            started = time.perf_counter()
            cache.fill(model, files, args.batch_seconds, durations=given)
            results.append((name, args.clips / (time.perf_counter() - started), "clips/s"))
        report(f"feature cache fill, {args.clips} clips, batch {args.batch_seconds:.0f} s", results, "file order")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
