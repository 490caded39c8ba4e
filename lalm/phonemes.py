"""Text to phonemes with espeak-ng, and a pronouncing lexicon for turning phonemes back into words.

The phoneme CTC recognizer (`lalm/recognizers/phoneme_ctc.py`) recognises phonemes, a closed set of a
few dozen units that every sentence exercises, instead of LLM tokens, most of which a small training
corpus never contains. Words come back through a lexicon: every word the LLM's vocabulary spells as
one piece plus every WordNet lemma (where a WordNet folder is named: Debian's `wordnet-base` installs
one at /usr/share/wordnet) plus any word list given, each pronounced by espeak-ng. A word the
training speech never contained is still in it.

espeak-ng is called in-process through its C library (`libespeak-ng.so.1`, from the `espeak-ng`
package), about 30 microseconds a word; the command-line tool joins lines into sentences, so it
cannot phonemise a list of texts one by one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import threading
from pathlib import Path
from typing import NamedTuple

from lalm.errors import UserError

WORDNET = Path("/usr/share/wordnet")  # where Debian's wordnet-base installs it; used only where named
STRESS = str.maketrans("", "", "ˈˌ")
SEPARATOR = "_"
_IPA = 0x02  # espeak_TextToPhonemes phonememode: IPA; bits 8-23 hold the separator character
_WORD = re.compile(r"[A-Za-z][a-z]*(?:'[a-z]+)?$")


class PhonemizerError(UserError, RuntimeError):
    pass


class Phonemizer:
    """espeak-ng's pronunciation of text, as words of phonemes (stress marks dropped)."""

    _lock = threading.Lock()  # espeak-ng keeps global state: one voice, one call at a time
    _lib = None
    _voice: str | None = None

    def __init__(self, voice: str = "en-us"):
        self.voice = voice
        with self._lock:
            self._load()

    def _load(self) -> None:
        cls = type(self)
        if cls._lib is None:
            name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
            try:
                lib = ctypes.cdll.LoadLibrary(name)
            except OSError as err:
                raise PhonemizerError(f"espeak-ng's library ({name}) is missing: install espeak-ng "
                                      f"(e.g. apt-get install espeak-ng); {err}") from None
            lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
            lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
            if lib.espeak_Initialize(2, 0, None, 0) < 0:  # 2 = synchronous, no audio device needed
                raise PhonemizerError("espeak-ng failed to initialise (is espeak-ng-data installed?)")
            cls._lib = lib
        if cls._voice != self.voice:
            if cls._lib.espeak_SetVoiceByName(self.voice.encode()) != 0:
                raise PhonemizerError(f"espeak-ng has no voice {self.voice!r} (espeak-ng --voices lists them)")
            cls._voice = self.voice

    def words(self, text: str) -> list[list[str]]:
        """`text`'s words, each a list of phonemes, in order (punctuation and clause breaks dropped)."""
        with self._lock:
            self._load()
            buf = ctypes.create_string_buffer(text.encode("utf-8"))
            pointer = ctypes.c_char_p(ctypes.addressof(buf))
            clauses = []
            while pointer.value:
                out = self._lib.espeak_TextToPhonemes(ctypes.byref(pointer), 1, _IPA | (ord(SEPARATOR) << 8))
                clauses.append((out or b"").decode("utf-8"))
        words = []
        for word in " ".join(clauses).translate(STRESS).split():
            phones = [p for p in word.split(SEPARATOR) if p]
            if phones:
                words.append(phones)
        return words


def lexicon_words(tokenizer=None, wordnet: Path | None = None, extra: list[str] = ()) -> list[str]:
    """The spellings a phoneme decoder may choose from, deduplicated, most likely first: the extra
    words, the LLM's one-piece words (frequent first), then the lemmas of the `wordnet` folder, when
    one is named (a folder that is not there is a FileNotFoundError, never a smaller lexicon).

    The LLM's one-piece words keep their case ("France", "Paris"), so the LLM can choose the spelling
    it expects; WordNet contributes its lemmas (split at spaces, hyphens and underscores).
    """
    seen: dict[str, None] = {}
    for word in extra:
        if _WORD.match(word):
            seen.setdefault(word, None)
    if tokenizer is not None:
        # in id order: a BPE vocabulary's early merges are its frequent words, so where one sound has
        # several spellings ("is", "Is", "IS") the common one comes first
        for piece, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1]):
            text = tokenizer.convert_tokens_to_string([piece])
            if text.startswith(" ") and _WORD.match(text[1:]) and len(text) > 2:
                seen.setdefault(text[1:], None)
        for word in ("a", "A", "I"):
            seen.setdefault(word, None)
    if wordnet is not None:
        if not (Path(wordnet) / "index.noun").is_file():
            raise FileNotFoundError(f"{wordnet} is no WordNet folder (no index.noun): install Debian's "
                                    "wordnet-base, or name no WordNet")
        for part in ("noun", "verb", "adj", "adv"):
            path = Path(wordnet) / f"index.{part}"
            if not path.exists():
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith(" "):
                        continue
                    for word in re.split(r"[_\-]", line.split(" ", 1)[0]):
                        if _WORD.match(word) and (len(word) > 1 or word in "ai"):
                            seen.setdefault(word, None)
    return list(seen)


class Match(NamedTuple):
    """A lexicon entry near what was heard."""

    spellings: list[str]
    distance: int  # phoneme edits from what was heard
    key: str  # the pronunciation, one character per phoneme (`Lexicon.phonemes` reads it)


class Lexicon:
    """Pronunciations of a word list, searchable by phoneme edit distance.

    Each phoneme becomes one character (the inventory's order), so a pronunciation is a short string
    and rapidfuzz finds the nearest ones among ~100k in a few milliseconds.

    `joinable` words are paired: where espeak-ng pronounces a pair as one word ("of the" -> ʌvðə), the
    pair is an entry of its own, so a decoder that hears one word can still spell two. Where it keeps
    the pair apart, each word's pronunciation there is an entry of that word: function words have
    weak forms in running speech that they never have alone ("a" is eɪ alone, ɐ in "a very").
    """

    def __init__(self, words: list[str], phonemizer: Phonemizer, inventory: list[str], joinable: list[str] = ()):
        self.inventory = inventory
        self._char = {p: chr(0x4E00 + i) for i, p in enumerate(inventory)}
        spellings: dict[str, list[str]] = {}

        def add(word: str, phones: list[str]) -> None:
            key = self.key(phones)
            if key and word not in spellings.setdefault(key, []):
                spellings[key].append(word)

        for word in words:
            pron = phonemizer.words(word)
            if len(pron) == 1:  # more than one: espeak spelled it out, not one spoken word
                add(word, pron[0])
        for a in joinable:
            for b in joinable:
                pron = phonemizer.words(f"{a} {b}")
                if len(pron) == 1:
                    add(f"{a} {b}", pron[0])
                elif len(pron) == 2:
                    add(a, pron[0])
                    add(b, pron[1])
        self._index(spellings)

    @classmethod
    def from_spellings(cls, spellings: dict[str, list[str]], inventory: list[str]) -> Lexicon:
        """A lexicon of ready pronunciation keys (``key`` strings -> spellings), no phonemizer:
        for benchmarks and tests of the search itself."""
        lexicon = cls.__new__(cls)
        lexicon.inventory = inventory
        lexicon._char = {p: chr(0x4E00 + i) for i, p in enumerate(inventory)}
        lexicon._index(spellings)
        return lexicon

    def _index(self, spellings: dict[str, list[str]]) -> None:
        self.keys = list(spellings)
        self.spellings = [spellings[k] for k in self.keys]
        # keys by length: an edit distance is at least the length difference, so a search reads the
        # lengths nearest the query's first and stops once no longer key can beat what it has
        self._by_length: dict[int, tuple[list[str], list[int]]] = {}
        for i, k in enumerate(self.keys):
            bucket = self._by_length.setdefault(len(k), ([], []))
            bucket[0].append(k)
            bucket[1].append(i)
        self._nearest: dict[tuple[str, int], list[tuple[int, int]]] = {}

    def key(self, phones: list[str]) -> str:
        return "".join(self._char[p] for p in phones if p in self._char)

    def __len__(self) -> int:
        return sum(len(s) for s in self.spellings)

    def phonemes(self, key: str) -> list[int]:
        """A pronunciation key as inventory indices."""
        return [ord(c) - 0x4E00 for c in key]

    def nearest(self, phones: list[str], limit: int) -> list[Match]:
        """Up to `limit` pronunciations nearest to `phones` (spellings, edit distance, key), nearest first
        (ties in lexicon order)."""
        key = self.key(phones)
        if not key or limit <= 0:
            return []
        found = self._nearest.get((key, limit))
        if found is None:
            found = self._search(key, limit)
            if len(self._nearest) >= 65536:  # the common words of a language repeat: keep them
                self._nearest.pop(next(iter(self._nearest)))
            self._nearest[key, limit] = found
        return [Match(self.spellings[i], d, self.keys[i]) for d, i in found]

    def _search(self, key: str, limit: int) -> list[tuple[int, int]]:
        from rapidfuzz import process
        from rapidfuzz.distance import Levenshtein

        found: list[tuple[int, int]] = []  # (distance, lexicon index), best first
        longest = max(self._by_length, default=0)
        for gap in range(max(len(key), longest) + 1):
            if len(found) >= limit and found[limit - 1][0] < gap:
                break  # every key `gap` or more phonemes longer or shorter is at least `gap` edits away
            for length in {len(key) - gap, len(key) + gap}:
                if length not in self._by_length:
                    continue
                keys, index = self._by_length[length]
                cutoff = found[limit - 1][0] if len(found) >= limit else None
                hits = process.extract(key, keys, scorer=Levenshtein.distance, limit=limit, score_cutoff=cutoff)
                found.extend((int(d), index[j]) for _, d, j in hits)
            found.sort()
            del found[limit:]
        return found


def read_word_file(path: str | Path) -> list[str]:
    """Words of a text file, whitespace-separated; lines starting with # are comments."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [w for line in lines if not line.lstrip().startswith("#") for w in line.split()]
