"""Varied English text for speaking, built offline: the transcripts of a synthetic ASR corpus.

    python -m data_gen.corpus --out texts.jsonl --size 12000 --exclude eval_questions.jsonl

Sources, in order:

- `--texts FILE`: your own sentences (one per line, or JSONL with `text`/`prompt`), all kept;
- WordNet (Debian's `wordnet-base`, read from `--wordnet`): its quoted example sentences, and one
  definition sentence per common noun ("A spider is a predatory arachnid ..."), which brings the
  everyday content words (animals, foods, places, materials) that example sentences rarely have.

A CTC head learns a word only from clips that say it, so what the corpus covers is what the model
can hear. `--tokenizer` (an LLM tokenizer or a `pkg:`/GGUF path) keeps sentences made of words that the
LLM holds as single tokens, i.e. common words, which a few thousand clips can teach. `--exclude`
drops every sentence that states the fact of an evaluation question (it holds one of the question's
answers and one of its content words), so a held-out set stays unseen in fact as well as in wording.
Output rows: `id`, `text`, `source` (`texts`, `wordnet_example`, `wordnet_definition`).
"""

from __future__ import annotations

import argparse
import random
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from lalm import console
from lalm.data_gen.cli import HelpFormatter
from lalm.errors import run_command
from lalm.jsonl import read_jsonl, write_jsonl_atomic

WORDNET = Path("/usr/share/wordnet")
#: Only plain spoken English: letters, spaces and light punctuation (digits are read unlike they are written).
SPEAKABLE = re.compile(r"[A-Za-z][A-Za-z ,.'?!;:-]*")
#: WordNet noun files whose everyday members a spoken question is likely to name.
EVERYDAY_NOUNS = {"05": "animal", "06": "artifact", "08": "body", "13": "food", "15": "location",
                  "17": "object", "20": "plant", "23": "quantity", "27": "substance", "28": "time"}
STOPWORDS = frozenset(
    "a an the of is are was were what which who whom how many much do does did in on at to for and or by with "
    "from there that this it its our we you your be called as into than then so".split())


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def speakable(text: str, min_words: int, max_words: int) -> bool:
    return text.isascii() and bool(SPEAKABLE.fullmatch(text)) and min_words <= len(text.split()) <= max_words


def wordnet_examples(root: Path) -> Iterator[str]:
    """The quoted example sentences of WordNet's synsets ("he kept the title to his car in the glove compartment")."""
    for part in ("noun", "verb", "adj", "adv"):
        for line in _data_lines(root / f"data.{part}"):
            gloss = line.partition("|")[2]
            yield from (s.strip() for s in re.findall(r'"([^"]+)"', gloss))


def wordnet_definitions(root: Path) -> Iterator[str]:
    """"A <noun> is <its gloss>." for single-word nouns of the everyday noun files."""
    for line in _data_lines(root / "data.noun"):
        head, _, gloss = line.partition("|")
        fields = head.split()
        lemma = fields[4]
        if fields[1] not in EVERYDAY_NOUNS or not lemma.isalpha():
            continue
        definition = gloss.split(";")[0].split('"')[0].strip()
        if not definition:
            continue
        article = "" if lemma[0].isupper() else ("an " if lemma[0] in "aeiou" else "a ")
        sentence = f"{article}{lemma} is {definition}."
        yield sentence[0].upper() + sentence[1:]


def _data_lines(path: Path) -> Iterator[str]:
    with path.open(encoding="latin-1") as f:  # WordNet's files are Latin-1; non-ASCII lines are dropped later
        for line in f:
            if not line.startswith("  "):  # the licence header is indented
                yield line


class FactFilter:
    """Says whether a sentence states the fact of a held-out question: one of its answers (all of that
    answer's content words) together with one content word of the question, or the question itself."""

    def __init__(self, questions: Iterable[dict]):
        self.facts: list[tuple[set[str], list[set[str]]]] = []
        self.prompts: set[str] = set()
        for q in questions:
            prompt = q.get("prompt") or q.get("text") or ""
            self.prompts.add(" ".join(words(prompt)))
            answers = [set(words(a)) - STOPWORDS for a in q.get("answers") or [q.get("reference", "")]]
            self.facts.append((set(words(prompt)) - STOPWORDS, [a for a in answers if a]))

    def __call__(self, sentence: str) -> bool:
        ws = set(words(sentence))
        if " ".join(words(sentence)) in self.prompts:
            return True
        return any(question & ws and any(answer <= ws for answer in answers) for question, answers in self.facts)


def common_words_filter(tokenizer, share: float) -> Callable[[str], bool]:
    """True for sentences where at least `share` of the words are one token of `tokenizer` (common words)."""
    cache: dict[str, bool] = {}

    def single(word: str) -> bool:
        if word not in cache:
            cache[word] = len(tokenizer(" " + word, add_special_tokens=False)["input_ids"]) == 1
        return cache[word]

    def keep(sentence: str) -> bool:
        ws = re.findall(r"[A-Za-z']+", sentence)
        return bool(ws) and sum(map(single, ws)) >= share * len(ws)

    return keep


def build(size: int, texts: list[str], wordnet: Path | None, exclude: FactFilter | None,
          keep: Callable[[str], bool] | None, definitions_share: float, seed: int,
          min_words: int = 3, max_words: int = 18) -> tuple[list[dict], dict]:
    """Up to `size` rows: every usable text of `texts`, then WordNet definitions and examples mixed by
    `definitions_share`; returns (rows, counts of what was kept and dropped)."""
    stats = {"texts": 0, "wordnet_definition": 0, "wordnet_example": 0, "dropped_unspeakable": 0,
             "dropped_fact": 0, "dropped_rare_words": 0}
    seen: set[str] = set()

    def usable(sentences: Iterable[str], check_words: bool) -> list[str]:
        out = []
        for s in sentences:
            s = " ".join(s.split())
            if s in seen:
                continue
            seen.add(s)
            if not speakable(s, min_words, max_words):
                stats["dropped_unspeakable"] += 1
            elif exclude is not None and exclude(s):
                stats["dropped_fact"] += 1
            elif check_words and keep is not None and not keep(s):
                stats["dropped_rare_words"] += 1
            else:
                out.append(s)
        return out

    rng = random.Random(seed)
    rows = [("texts", s) for s in usable(texts, check_words=False)]
    if wordnet is not None:
        definitions = usable(wordnet_definitions(wordnet), check_words=True)
        examples = usable(wordnet_examples(wordnet), check_words=True)
        rng.shuffle(definitions)
        rng.shuffle(examples)
        room = max(0, size - len(rows))
        n_def = min(len(definitions), round(room * definitions_share))
        n_ex = min(len(examples), room - n_def)
        n_def = min(len(definitions), room - n_ex)  # definitions fill what examples could not
        rows += [("wordnet_definition", s) for s in definitions[:n_def]]
        rows += [("wordnet_example", s) for s in examples[:n_ex]]
    rows = rows[:size]
    rng.shuffle(rows)
    for source, _ in rows:
        stats[source] += 1
    return [{"id": f"s{i:06d}", "text": text, "source": source} for i, (source, text) in enumerate(rows)], stats


def read_texts(path: Path) -> list[str]:
    """Sentences of a text file (one per line) or of a JSONL file (`text` or `prompt` of each row)."""
    if path.suffix == ".jsonl":
        return [r.get("text") or r.get("prompt") or "" for r in read_jsonl(path)]
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m data_gen.corpus", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="JSONL file to write (rows: id, text, source)")
    p.add_argument("--size", type=int, default=12000, help="sentences to write at most")
    p.add_argument("--texts", type=Path, action="append", default=[],
                   help="your own sentences (text file, one per line, or JSONL with text/prompt); repeatable")
    p.add_argument("--wordnet", type=Path, default=WORDNET,
                   help="WordNet data folder (Debian: apt-get install wordnet-base); a missing folder is skipped")
    p.add_argument("--exclude", type=Path, action="append", default=[],
                   help="JSONL of held-out questions (prompt/text + answers): sentences stating their facts are dropped")
    p.add_argument("--tokenizer", help="keep only sentences of common words: an LLM tokenizer (hub id, folder, "
                                       "GGUF file or pkg: path) whose single-token words count as common")
    p.add_argument("--common-share", type=float, default=0.85,
                   help="with --tokenizer, the share of a sentence's words that must be single tokens")
    p.add_argument("--definitions-share", type=float, default=0.5,
                   help="share of the WordNet sentences that are noun definitions (the rest are examples)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffles")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: run(args), (ValueError, OSError))


def run(args: argparse.Namespace) -> dict:
    if args.size < 1 or not 0 <= args.definitions_share <= 1 or not 0 <= args.common_share <= 1:
        raise ValueError("--size must be positive; --definitions-share and --common-share lie in [0, 1]")
    texts = [t for path in args.texts for t in read_texts(path)]
    exclude = FactFilter(q for path in args.exclude for q in read_jsonl(path)) if args.exclude else None
    wordnet = args.wordnet if (args.wordnet / "data.noun").is_file() else None
    if wordnet is None:
        console.note(f"no WordNet at {args.wordnet} (apt-get install wordnet-base); only --texts are used")
    keep = common_words_filter(load_tokenizer(args.tokenizer), args.common_share) if args.tokenizer else None
    rows, stats = build(args.size, texts, wordnet, exclude, keep, args.definitions_share, args.seed)
    if not rows:
        raise ValueError("no usable sentence: give --texts or install WordNet")
    write_jsonl_atomic(args.out, rows)
    print(f"corpus: {len(rows)} sentences -> {args.out}; " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    return stats


def load_tokenizer(path: str):
    """An LLM tokenizer from a hub id, a folder, a GGUF file or a `pkg:` path (the LLM loader's rules)."""
    from transformers import AutoTokenizer

    from lalm.llm import split_gguf_path
    from lalm.paths import resolve_path

    source, gguf_file = split_gguf_path(resolve_path(path), None)
    return AutoTokenizer.from_pretrained(source, **({"gguf_file": gguf_file} if gguf_file else {}))


if __name__ == "__main__":
    raise SystemExit(main())
