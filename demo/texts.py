"""The demo's own text, shipped as data files in demo/data/ and read here.

``TRAIN_TEXTS`` (assistant_texts.txt) are everyday utterances to a voice assistant, written for this kit;
the demo's training corpus starts from them and adds WordNet sentences (``data_gen.corpus``).

``EVAL_QA`` (eval_questions.jsonl) are easy spoken factual questions with short reference answers. None of
them, nor the facts they ask for, appear in the training corpus (``data_gen.corpus --exclude`` drops any
sentence stating one), so the evaluation measures transfer to unseen questions.

``VOICES`` (voices.json) splits espeak-ng voices into those the training clips are spoken in and those
the evaluation questions are spoken in: the questions are heard in voices training never used.
``train_engines`` and ``eval_engines`` do the same for the human-like engines (piper, kokoro, flite,
festival; their training voices weighted to about half of the demo's clips), by the engines' own
split of training and evaluation voices (data_gen/data/tts_voices.json).

All text is plain ASCII, and numbers are spelled out so espeak-ng reads them naturally.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

__all__ = ["DATA", "EVAL_QA", "TRAIN_TEXTS", "VOICES", "check"]

DATA = Path(__file__).resolve().parent / "data"
TRAIN_TEXTS: tuple[str, ...] = tuple(
    line.strip() for line in (DATA / "assistant_texts.txt").read_text(encoding="utf-8").splitlines() if line.strip())
EVAL_QA: tuple[dict, ...] = tuple(
    json.loads(line) for line in (DATA / "eval_questions.jsonl").read_text(encoding="utf-8").splitlines() if line.strip())
VOICES: dict[str, dict[str, str]] = json.loads((DATA / "voices.json").read_text(encoding="utf-8"))


def _normalize(text: str) -> str:
    """Lowercase, drop ASCII punctuation and collapse whitespace."""
    stripped = text.lower().translate(str.maketrans("", "", string.punctuation))
    return " ".join(stripped.split())


def check() -> None:
    """Assert the invariants the demo relies on; raises ``AssertionError`` on the first failure."""
    assert len(TRAIN_TEXTS) == 450, f"expected 450 train texts, got {len(TRAIN_TEXTS)}"
    assert len(set(TRAIN_TEXTS)) == len(TRAIN_TEXTS), "train texts are not unique"
    train_norm = {_normalize(t) for t in TRAIN_TEXTS}
    assert len(train_norm) == len(TRAIN_TEXTS), "train texts are not unique after normalization"
    for text in TRAIN_TEXTS:
        assert text.isascii(), f"non-ASCII train text: {text!r}"
        assert 3 <= len(text.split()) <= 20, f"train text not 3 to 20 words: {text!r}"

    assert len(EVAL_QA) == 60, f"expected 60 eval items, got {len(EVAL_QA)}"
    ids = [qa["id"] for qa in EVAL_QA]
    prompts = [_normalize(qa["prompt"]) for qa in EVAL_QA]
    assert len(set(ids)) == len(ids), "eval ids are not unique"
    assert len(set(prompts)) == len(prompts), "eval prompts are not unique"
    for qa in EVAL_QA:
        assert set(qa) == {"id", "prompt", "reference", "answers"}, f"bad keys in {qa['id']}"
        assert qa["prompt"].isascii(), f"non-ASCII eval prompt: {qa['prompt']!r}"
        assert _normalize(qa["prompt"]) not in train_norm, f"eval prompt found in train: {qa['prompt']!r}"
        answers = qa["answers"]
        assert isinstance(answers, list) and answers, f"empty answers for {qa['id']}"
        assert all(isinstance(a, str) and a.strip() for a in answers), f"blank answer in {qa['id']}"
        lowered = [a.lower() for a in answers]
        assert qa["reference"].lower() in lowered, f"reference missing from answers in {qa['id']}"

    splits = {"train", "eval", "train_engines", "eval_engines"}
    assert set(VOICES) == splits, f"voices.json needs {sorted(splits)}, got {sorted(VOICES)}"
    for kind in ("", "_engines"):
        shared = set(VOICES["train" + kind]) & set(VOICES["eval" + kind])
        assert not shared, f"voices both in training and evaluation: {sorted(shared)}"
    for split in ("train", "eval"):  # espeak-ng voices with their genders; other engines' know their own
        assert VOICES[split] and all(g in ("male", "female") for g in VOICES[split].values()), \
            f"bad genders in {split} voices"
    from lalm.data_gen.voices import parse_voices

    for split in ("train_engines", "eval_engines"):
        specs = parse_voices(",".join(VOICES[split]))
        assert all(s.training == (split == "train_engines") for s in specs), f"{split}: a voice in the wrong split"
