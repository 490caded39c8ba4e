"""`phoneme_ctc`: a trained phoneme CTC head, a lexicon and the frozen LLM's word search write the transcript.

The token-level CTC projector (`ctc`) can only emit tokens its training speech contained, and a
corpus of a few hours covers a small share of a 49k vocabulary: content words of unseen questions
("France", "spider", "Celsius") are exactly the ones it misses. Phonemes are a closed set of ~60
that every sentence exercises, so a head trained on the same speech recognises the sounds of words
it never heard. The recognizer then turns sounds into words the classic way:

1. a frame classifier (stack k frames -> MLP) over blank, the phoneme inventory and a word boundary,
   reading the frozen encoder frames of one branch (`model.recognizer.branch`) and trained with CTC
   on espeak-ng's pronunciation of the transcript (objective `ctc`, no LLM forward);
2. greedy CTC decoding into words of phonemes;
3. per word, the nearest pronunciations in a lexicon (`lalm.phonemes.Lexicon`): the LLM's one-piece
   words, WordNet's lemmas where `wordnet` names a WordNet folder, and a `words` file; costed by
   how well each explains the word's frames;
4. a beam search in which the frozen LLM scores the spellings in context (where a typed message
   would stand), so "capital of France" wins over "capital of Franz".

The words chosen are the transcript: text, rendered into the prompt at the layout's `{transcript}`
like any recognizer's. What the head learned (`head`: k, hidden, dropout, voice, phonemes) is fixed by
training; how it decodes (`options`: the lexicon's sources, the search's beam and weights) is an
inference setting, saved with the checkpoint and overridable when it loads. A lexicon source the
options name and the host lacks is an error, never a quietly different lexicon.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lalm.adapters.base import check_positive, ctc_collapse, group_frames, label_starts
from lalm.recognizers.base import RECOGNIZERS, FrozenLM, TrainedRecognizer

DATA = Path(__file__).resolve().parent / "data"
WORDNET_INSTALL = "install Debian's wordnet-base (apt-get install wordnet-base; install.sh does)"


def read_inventory(path: str | Path) -> list[str]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    inventory = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    if len(set(inventory)) != len(inventory) or not inventory:
        raise ValueError(f"{path}: a phoneme inventory lists each phoneme once, one per line")
    return inventory


def inventory_file(voice: str = "en-us", phonemes: str | None = None) -> Path:
    """The phoneme inventory a head is trained over: `phonemes`, else the kit's list for `voice`."""
    path = Path(phonemes) if phonemes else DATA / f"phonemes_{voice}.txt"
    if not path.exists():
        raise ValueError(f"no phoneme inventory for voice {voice!r}: pass phonemes: FILE (one phoneme per "
                         f"line; the kit ships {', '.join(p.stem[9:] for p in DATA.glob('phonemes_*.txt'))})")
    return path


def lexicon_source_problems(wordnet: str | None, words: str | None, joinable: str | None) -> list[str]:
    """Lexicon sources the decoding options name and this host lacks (each names its fix)."""
    problems = []
    if wordnet is not None and not (Path(wordnet) / "index.noun").is_file():
        problems.append(f"wordnet: {wordnet} is no WordNet folder (no index.noun), and this model's lexicon "
                        f"includes WordNet's lemmas: {WORDNET_INSTALL}, or pass the folder that holds it as "
                        "model.recognizer.options.wordnet=DIR (wordnet=null decodes from a smaller lexicon, "
                        "differently from how the checkpoint was measured)")
    for name, path in (("words", words), ("joinable", joinable)):
        if path is not None and not Path(path).is_file():
            problems.append(f"{name}: {path} does not exist (a file of words, whitespace-separated); pass an "
                            f"existing file as model.recognizer.options.{name}")
    return problems


class LexiconSourceError(FileNotFoundError):
    """A lexicon source that the decoding options name is missing on this host (a user's error: the
    commands print it as one line)."""


@RECOGNIZERS.register("phoneme_ctc")
class PhonemeCTCRecognizer(TrainedRecognizer):
    """Frames -> phonemes (CTC) -> words (lexicon + frozen LLM) -> the transcript.

    Head (`model.recognizer.head`; what training learns, fixed in a checkpoint):
        k: frames stacked per output frame. Speech runs at ~12-15 phonemes a second and CTC needs
            room for blanks between repeats, so 2 (25 Hz from Whisper's 50 Hz) is the default.
        hidden: MLP width (two hidden layers).
        dropout: dropout on the stacked frames and hidden layers while training (the head overfits a
            few hours of speech otherwise).
        voice: the espeak-ng voice whose pronunciations are the targets and the lexicon.
        phonemes: the inventory file (one phoneme per line); default the kit's list for the voice.
            Its order is part of a trained checkpoint.

    Decoding (`model.recognizer.options`; inference settings, overridable at load):
        wordnet: a WordNet folder whose lemmas join the lexicon; null: the LLM's vocabulary and
            `words` only. Named, never looked for: a checkpoint decodes with the lexicon its options
            say, and a WordNet folder missing on the host is an error.
        words: a file of extra words for the lexicon, one per line (names, domain terms).
        joinable: a file of short words espeak-ng may join to the next ("of the"); each joined pair
            is a lexicon entry. Default: the kit's list for the voice's language, where it has one.
        lm_weight: weight of the LLM's log-probability against the pronunciation cost; 0 takes the
            nearest pronunciation's first spelling.
        lm_beam: hypotheses kept by the search.
        lm_candidates: pronunciations considered per word (with acoustic "ctc": the cheapest of the
            4 x lm_candidates nearest by phoneme edits).
        lm_spellings: spellings considered per pronunciation (homophones: "their", "there").
        acoustic: how a word's candidate pronunciations are costed: "ctc", by their CTC log-likelihood
            over that word's frames (what the head heard, not only its best guess); "edits", by
            distance_cost x phoneme edits from the greedy phonemes.
        distance_cost: cost (in nats) of each phoneme edit with acoustic "edits".
        lm_slack: candidates costing more than this many nats over a word's best are not considered
            (the LLM would rarely make up the difference).
        split_cost: where set, a heard word may also be two words (a word boundary the head missed),
            at this cost in nats on top of the two halves' own; null: words are as heard. 4 measured
            best of 0 to 9 on the demo (docs/quality.md).

    `in_dim` (the branch's encoder width) and `lm` (the model's frozen LLM, for the word search and
    the lexicon's LLM words) come from the model.
    """

    head_options = ("k", "hidden", "dropout", "voice", "phonemes")

    def __init__(self, in_dim: int, lm: FrozenLM | None = None, k: int = 2, hidden: int = 1024,
                 dropout: float = 0.0, voice: str = "en-us", phonemes: str | None = None,
                 wordnet: str | None = None, words: str | None = None, joinable: str | None = None,
                 lm_weight: float = 1.0, lm_beam: int = 4, lm_candidates: int = 6, lm_spellings: int = 3,
                 acoustic: str = "ctc", distance_cost: float = 3.0, lm_slack: float = 6.0,
                 split_cost: float | None = 4.0):
        check_positive(in_dim=in_dim, k=k, hidden=hidden, lm_beam=lm_beam, lm_candidates=lm_candidates,
                       lm_spellings=lm_spellings)
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if acoustic not in ("ctc", "edits"):
            raise ValueError(f"acoustic must be 'ctc' or 'edits', got {acoustic!r}")
        if min(lm_weight, distance_cost, lm_slack, 0 if split_cost is None else split_cost) < 0:
            raise ValueError(f"lm_weight, distance_cost, lm_slack and split_cost must be >= 0, got {lm_weight!r}, "
                             f"{distance_cost!r}, {lm_slack!r} and {split_cost!r}")
        missing = lexicon_source_problems(wordnet, words, joinable)
        if missing:
            raise LexiconSourceError("recognizer phoneme_ctc: " + "; ".join(missing))
        super().__init__()
        self.in_dim, self.lm = in_dim, lm
        self.inventory = read_inventory(inventory_file(voice, phonemes))
        self.k, self.voice = k, voice
        self.wordnet, self.words_file = wordnet, words
        self.joinable = joinable or DATA / f"function_words_{voice.split('-')[0]}.txt"
        self.lm_weight, self.lm_beam, self.lm_candidates = float(lm_weight), lm_beam, lm_candidates
        self.lm_spellings, self.acoustic, self.lm_slack = lm_spellings, acoustic, float(lm_slack)
        self.distance_cost = float(distance_cost)
        self.split_cost = None if split_cost is None else float(split_cost)
        self.boundary = len(self.inventory) + 1  # labels: 0 blank, 1..P phonemes, P+1 word boundary
        self._index = {p: i + 1 for i, p in enumerate(self.inventory)}
        self.dropout = dropout
        self.mlp = nn.Sequential(nn.Linear(in_dim * k, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, self.boundary + 1))
        self._targets: dict[str, list[int]] = {}
        self._lexicon = None
        self._phonemizer = None
        self._prompt: tuple[list[int], list[int]] | None = None
        self._heard: dict[tuple, str] = {}  # word-search results by what was heard (oldest dropped first)

    @classmethod
    def config_problems(cls, head: dict, options: dict, where: str) -> list[str]:
        # The lexicon's sources are host files: checked when the recognizer is built (LexiconSourceError),
        # so that a config stays valid to read on any host.
        try:
            inventory_file(head.get("voice", "en-us"), head.get("phonemes"))
        except ValueError as err:
            return [f"{where}.head: {err}"]
        return []

    # ------------------------------------------------------------------------------------------ parts

    def _frozen_lm(self) -> FrozenLM:
        if self.lm is None:
            raise RuntimeError("recognizer phoneme_ctc decodes with the model's frozen LLM: build it with "
                               "lm=FrozenLM(llm, tokenizer) (LALM passes its own)")
        return self.lm

    @property
    def phonemizer(self):
        if self._phonemizer is None:
            from lalm.phonemes import Phonemizer

            self._phonemizer = Phonemizer(self.voice)
        return self._phonemizer

    @property
    def lexicon(self):
        """Built on first use (a few seconds): training never needs it."""
        if self._lexicon is None:
            from lalm.phonemes import Lexicon, lexicon_words, read_word_file

            extra = read_word_file(self.words_file) if self.words_file else []
            joinable = read_word_file(self.joinable) if Path(self.joinable).exists() else []
            words = lexicon_words(self._frozen_lm().tokenizer, Path(self.wordnet) if self.wordnet else None, extra)
            self._lexicon = Lexicon(words, self.phonemizer, self.inventory, joinable)
        return self._lexicon

    # ------------------------------------------------------------------------------------------ scoring

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Stacked frames: the classifier's positions."""
        return (lengths + self.k - 1) // self.k

    def logits(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, N, 2 + P] scores over (blank, phonemes, boundary) per stacked frame, and the lengths N."""
        x = F.dropout(group_frames(features, lengths, self.k).flatten(2), self.dropout, self.training)
        for layer in self.mlp:
            x = layer(x)
            if isinstance(layer, nn.GELU):
                x = F.dropout(x, self.dropout, self.training)
        return x, self.output_lengths(lengths)

    def labels(self, text: str) -> list[int]:
        """CTC target of a transcript: its phonemes with a boundary between words (cached per text)."""
        labels = self._targets.get(text)
        if labels is None:
            labels = []
            for word in self.phonemizer.words(text):
                ids = [self._index[p] for p in word if p in self._index]
                if ids:
                    labels += ([self.boundary] if labels else []) + ids
            self._targets[text] = labels
        return labels

    # ------------------------------------------------------------------------------------------ training

    def loss(self, frames: torch.Tensor, lengths: torch.Tensor, transcripts: list[str]) -> tuple[torch.Tensor, int]:
        """(summed CTC loss, target labels) on the pronunciations of the transcripts; clips too short for
        their transcript add zero."""
        rows = [self.labels(text) for text in transcripts]
        logits, n = self.logits(frames, lengths)
        log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # [N, B, C]
        flat = torch.tensor([x for row in rows for x in row], dtype=torch.long, device=logits.device)
        target_lengths = torch.tensor([len(r) for r in rows], device=logits.device)
        loss = F.ctc_loss(log_probs, flat, n, target_lengths, blank=0, reduction="none", zero_infinity=True)
        return loss.sum(), int(target_lengths.sum())

    # ------------------------------------------------------------------------------------------ decoding

    @torch.no_grad()
    def heard_words(self, frames: torch.Tensor, lengths: torch.Tensor) -> list[list[tuple[list[int], torch.Tensor]]]:
        """Greedy CTC decoding: per clip, its words as (phoneme labels, the word's frame log-probs [T, C]).

        A word is the stretch of frames between two frames whose best label is the word boundary."""
        logits, n = self.logits(frames, lengths)
        logp = logits.float().log_softmax(-1)
        best = logp.argmax(-1)
        out = []
        for b in range(len(n)):
            path = best[b, : int(n[b])]
            edges = [-1, *(path == self.boundary).nonzero()[:, 0].tolist(), len(path)]
            words = []
            for start, stop in itertools.pairwise(edges):
                labels = ctc_collapse(path[start + 1: stop].tolist())
                if labels:
                    words.append((labels, logp[b, start + 1: stop]))
            out.append(words)
        return out

    def heard_phonemes(self, frames: torch.Tensor, lengths: torch.Tensor) -> list[list[list[str]]]:
        """Greedy CTC decoding: per clip, its words as lists of phonemes."""
        return [[[self.inventory[label - 1] for label in labels] for labels, _ in words]
                for words in self.heard_words(frames, lengths)]

    @torch.no_grad()
    def transcribe(self, frames: torch.Tensor, lengths: torch.Tensor, fused: bool = True) -> list[str]:
        """What was said, as words: chosen with the LLM when `fused` and lm_weight > 0, else each heard
        word's cheapest pronunciation's first spelling."""
        texts = []
        fuse = bool(fused and self.lm_weight)
        settings = (fuse, self.lm_weight, self.lm_beam, self.lm_candidates, self.lm_spellings, self.acoustic,
                    self.distance_cost, self.lm_slack, self.split_cost)
        for words in self.heard_words(frames, lengths):
            # the same sounds give the same words: a clip read again (each turn of a chat, the answer and
            # then the transcript in evaluation) costs no second search
            heard = [(tuple(labels), (logp * 100).round().to(torch.int32).cpu().numpy().tobytes()
                      if self.acoustic == "ctc" else b"") for labels, logp in words]
            key = (tuple(heard), *settings)
            if key not in self._heard:
                candidates = [c for c in (self._candidates(labels, logp) for labels, logp in words) if c]
                if fuse:
                    text = " ".join(self._search(candidates)[0]) if candidates else ""
                else:
                    text = " ".join(c[0][0][0] for c in candidates)
                if len(self._heard) >= 4096:
                    self._heard.pop(next(iter(self._heard)))
                self._heard[key] = text
            texts.append(self._heard[key])
        return texts

    def _candidates(self, labels: list[int], frames: torch.Tensor) -> list[tuple[list[str], float]]:
        """A heard word's candidate pronunciations as (spellings, acoustic cost in nats), cheapest first,
        within lm_slack of the cheapest.

        With split_cost set, the word may also be two words whose boundary the head missed ("mɛnɪdɪz":
        "many days"): at each phoneme, the two halves are looked up and costed on their own frames."""
        costed = self._costed(labels, frames, self.lm_candidates)
        # a split cuts the frames where a phoneme begins: only where `labels` are these frames' best path
        starts = label_starts(frames.argmax(-1).tolist()) if self.split_cost is not None and costed else []
        if len(labels) >= 2 and len(starts) == len(labels):
            for j in range(1, len(labels)):
                left = self._costed(labels[:j], frames[: starts[j]], 2)
                right = self._costed(labels[j:], frames[starts[j]:], 2)
                costed += [([f"{a} {b}" for a in ls[:2] for b in rs[:2]], lc + rc + self.split_cost)
                           for ls, lc in left for rs, rc in right]
            costed = sorted(costed, key=lambda x: x[1])[: self.lm_candidates]
        return [c for c in costed if c[1] <= costed[0][1] + self.lm_slack] if costed else []

    def _costed(self, labels: list[int], frames: torch.Tensor, limit: int) -> list[tuple[list[str], float]]:
        """Up to `limit` lexicon entries for one word as (spellings, acoustic cost), cheapest first."""
        phones = [self.inventory[label - 1] for label in labels]
        if self.acoustic == "edits":
            return [(m.spellings, self.distance_cost * m.distance) for m in self.lexicon.nearest(phones, limit)]
        # the nearest by edits, re-costed by how well each explains the word's frames
        matches = self.lexicon.nearest(phones, 4 * limit)
        if not matches:
            return []
        targets = [[i + 1 for i in self.lexicon.phonemes(m.key)] for m in matches]
        device = frames.device
        nll = F.ctc_loss(frames[:, None].expand(-1, len(matches), -1),
                         torch.tensor([x for t in targets for x in t], dtype=torch.long, device=device),
                         torch.full((len(matches),), frames.shape[0], dtype=torch.long, device=device),
                         torch.tensor([len(t) for t in targets], device=device), blank=0, reduction="none")
        nll = torch.nan_to_num(nll, posinf=1e4)  # more phonemes than the frames can hold
        return sorted(((m.spellings, float(c)) for m, c in zip(matches, nll)), key=lambda x: x[1])[:limit]


    @torch.no_grad()
    def _search(self, candidates: list[list[tuple[list[str], float]]]) -> tuple[list[str], float]:
        """Beam search over spellings, word by word: -acoustic cost + lm_weight x log p_llm. `candidates`
        holds per word (spellings, cost) pairs. Returns the best words and their score.

        The LLM runs once per word for all hypotheses x spellings together, extending the hypotheses'
        KV cache by the spellings' tokens (memory traffic, not arithmetic, bounds a small LLM on a CPU,
        so the number of passes is what counts). Spellings have different token counts: the padding
        they leave in the cache is masked out of every later pass.
        """
        from lalm.llm import cached_forward

        llm, tokenizer = self._frozen_lm().llm, self._frozen_lm().tokenizer
        if self._prompt is None:
            from lalm.lm_fusion import user_turn_prefix

            self._prompt = user_turn_prefix(tokenizer)
        prefix, end = self._prompt
        device = llm.get_input_embeddings().weight.device
        out, cache = cached_forward(llm, None, input_ids=torch.tensor([prefix], device=device))
        next_logp = out.logits[:, -1].float().log_softmax(-1)  # [hypotheses, vocab]
        mask = torch.ones(1, len(prefix), dtype=torch.long, device=device)
        scores = torch.zeros(1, device=device)
        words: list[list[str]] = [[]]
        for options in candidates:
            spellings = [(spelling, cost) for names, cost in options for spelling in names[: self.lm_spellings]]
            rows = [(h, spelling, cost, tokenizer(spelling if not words[h] else " " + spelling,
                                                  add_special_tokens=False)["input_ids"])
                    for h in range(len(words)) for spelling, cost in spellings]
            width = max(len(r[3]) for r in rows)
            ids = torch.zeros(len(rows), width, dtype=torch.long, device=device)
            real = torch.zeros(len(rows), width, dtype=torch.long, device=device)
            for i, (*_, tokens) in enumerate(rows):
                ids[i, : len(tokens)] = torch.tensor(tokens, device=device)
                real[i, : len(tokens)] = 1
            parent = torch.tensor([r[0] for r in rows], device=device)
            counts = real.sum(1)
            cache.reorder_cache(parent)
            past = mask[parent]
            mask = torch.cat([past, real], dim=1)
            positions = past.sum(1, keepdim=True) + torch.arange(width, device=device)
            out, cache = cached_forward(llm, cache, input_ids=ids, attention_mask=mask, position_ids=positions)
            logp = out.logits.float().log_softmax(-1)  # [rows, width, vocab]
            # log p(first token) comes from the hypothesis; token i's from position i - 1 of this pass
            said = next_logp[parent, ids[:, 0]]
            later = logp[:, :-1].gather(-1, ids[:, 1:, None])[..., 0] * real[:, 1:]
            cost = torch.tensor([r[2] for r in rows], device=device)
            total = scores[parent] - cost + self.lm_weight * (said + later.sum(1))
            keep = total.topk(min(self.lm_beam, len(rows))).indices
            cache.reorder_cache(keep)
            mask, scores = mask[keep], total[keep]
            next_logp = logp[keep, counts[keep] - 1]
            words = [[*words[rows[i][0]], rows[i][1]] for i in keep.tolist()]
        if end:  # a hypothesis after which the LLM would end the message is complete
            scores = scores + self.lm_weight * next_logp[:, end[0]]
        best = int(scores.argmax())
        return words[best], float(scores[best])
