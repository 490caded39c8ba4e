"""Lexicon search: the nearest pronunciations of a heard word, full scan against length buckets.

    python bench/lexicon_nearest.py                      # WordNet's ~88k words, 400 heard words
    python bench/lexicon_nearest.py --words 5000 --queries 50     # seconds, checks the path

The phoneme CTC recognizer turns each heard word into candidates with `Lexicon.nearest` (rapidfuzz edit
distance over every pronunciation key). The naive way scans all keys per word; the kit reads the
keys by length, nearest length first, and stops once no farther length can beat the `limit`-th
distance found; a memo serves repeated words (speech repeats its common words). The lexicon is the
demo's: WordNet's lemmas pronounced by espeak-ng. Heard words are the words of WordNet's example
sentences in running text, each phoneme replaced by a random one with probability --error (a
head's mistakes). Results are checked identical to the full scan's. Needs espeak-ng and
wordnet-base (install.sh brings both).
"""

from __future__ import annotations

import argparse
import random
import time

from lalm.bench.common import report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--words", type=int, default=None, help="lexicon words (default: all of WordNet's)")
    parser.add_argument("--queries", type=int, default=400, help="heard words (default 400)")
    parser.add_argument("--limit", type=int, default=8, help="candidates per word (default 8)")
    parser.add_argument("--error", type=float, default=0.1, help="phoneme error rate of the heard words (0.1)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def heard_words(sentences, phonemizer, inventory: list[str], n: int, error: float, seed: int) -> list[list[str]]:
    """The first n words of the sentences as phonemes, each phoneme swapped for a random one with
    probability error: what a CTC head that mishears a little writes."""
    rng = random.Random(seed)
    queries: list[list[str]] = []
    for sentence in sentences:
        for word in phonemizer.words(sentence):
            queries.append([rng.choice(inventory) if rng.random() < error else p for p in word])
        if len(queries) >= n:
            break
    return queries[:n]


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)

    from rapidfuzz import process
    from rapidfuzz.distance import Levenshtein

    from lalm.data_gen.corpus import wordnet_examples
    from lalm.phonemes import WORDNET, Lexicon, Phonemizer, lexicon_words
    from lalm.recognizers.phoneme_ctc import inventory_file, read_inventory

    if not WORDNET.is_dir():
        raise SystemExit(f"error: WordNet not found at {WORDNET} (apt-get install wordnet-base)")
    phonemizer = Phonemizer()
    inventory = read_inventory(inventory_file())  # the phoneme recognizer's en-us inventory
    words = lexicon_words(None, WORDNET)[: args.words]
    started = time.perf_counter()
    lexicon = Lexicon(words, phonemizer, inventory)
    print(f"lexicon: {len(words)} words, {len(lexicon.keys)} keys, built in {time.perf_counter() - started:.1f} s")
    queries = heard_words(wordnet_examples(WORDNET), phonemizer, inventory, args.queries, args.error, args.seed)

    def full_scan(phones: list[str]) -> list[tuple[int, int]]:
        hits = process.extract(lexicon.key(phones), lexicon.keys, scorer=Levenshtein.distance, limit=args.limit)
        return sorted((int(d), j) for _, d, j in hits)

    def timed(fn) -> tuple[float, list]:
        started = time.perf_counter()
        out = [fn(q) for q in queries]
        return 1000 * (time.perf_counter() - started) / len(queries), out

    naive_ms, naive = timed(full_scan)
    bucket_ms, bucketed = timed(lambda q: lexicon._search(lexicon.key(q), args.limit))
    memo_ms, memoed = timed(lambda q: lexicon.nearest(q, args.limit))
    assert naive == bucketed, "length-bucket search differs from the full scan"
    position = {k: i for i, k in enumerate(lexicon.keys)}
    assert naive == [[(m.distance, position[m.key]) for m in r] for r in memoed], "memo differs"
    print(f"{len(queries)} heard words ({len({tuple(q) for q in queries})} distinct), limit {args.limit}, "
          f"phoneme error {args.error}; results identical")
    report(
        "Lexicon.nearest, ms per heard word (lower is better; ratio = time / full scan's)",
        [
            ("full scan (naive)", naive_ms, "ms"),
            ("length buckets", bucket_ms, "ms"),
            ("length buckets + memo (Lexicon.nearest)", memo_ms, "ms"),
        ],
        "full scan (naive)",
    )


if __name__ == "__main__":
    main()
