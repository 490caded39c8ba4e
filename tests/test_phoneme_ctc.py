"""The phoneme CTC recognizer: espeak-ng targets, lexicon search, decoding with the frozen LLM, and its
place in the model (a trained recognizer over a branch's frames, its transcript rendered as text)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from lalm import LALM, load_config
from lalm.config import ConfigError
from lalm.phonemes import Lexicon, Phonemizer, PhonemizerError
from lalm.recognizers import build_recognizer
from lalm.recognizers.phoneme_ctc import LexiconSourceError, inventory_file, read_inventory
from tests.conftest import TINY

try:
    Phonemizer()
except PhonemizerError:
    pytest.skip("espeak-ng's library is not installed", allow_module_level=True)

WORDS = ["cat", "cats", "dog", "France", "friends", "fries", "the", "capital", "of", "is", "Paris"]
SAID = "the cat is in France"
INVENTORY = read_inventory(inventory_file())


@pytest.fixture
def words_file(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("\n".join(WORDS) + "\n")
    return path


def recognizer_overrides(options: dict, head: dict | None = None) -> list[str]:
    recognizer = {"name": "phoneme_ctc", "branch": "audio", "head": head or {"k": 2, "hidden": 32},
                  "options": options}
    return ["model.branches.0.projector=null", f"model.recognizer={json.dumps(recognizer)}",
            "model.prompt.layout=<text>{transcript}</text>"]


def build(options: dict) -> LALM:
    return LALM(load_config(TINY, recognizer_overrides(options)).model)


@pytest.fixture
def model(words_file):
    return build({"wordnet": None, "words": str(words_file), "lm_beam": 3, "lm_candidates": 3})


def train_on_one_clip(model: LALM, steps: int = 150) -> tuple[torch.Tensor, dict]:
    """A few steps of what objective ctc runs (`LALM.ctc_loss` on the encoder's frames) on one random clip."""
    torch.manual_seed(0)
    wave = torch.randn(32000) * 0.1  # 2 s: 100 frames, 50 positions at k=2
    features = model.encode_audio(wave[None], torch.tensor([wave.numel()]))
    targets = [model.tokenizer(SAID, add_special_tokens=False)["input_ids"]]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=3e-3)
    model.train()
    first = None
    for _ in range(steps):
        loss, _ = model.ctc_loss(features, targets, [SAID])
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    assert loss.item() < first / 10
    return wave, features


def test_phonemizer_gives_words_of_known_phonemes():
    words = Phonemizer().words("The capital of France, is Paris.")
    assert len(words) == 6
    assert all(p in INVENTORY for w in words for p in w)  # the shipped inventory covers English
    assert Phonemizer().words("") == []


def test_lexicon_finds_the_nearest_pronunciation():
    lexicon = Lexicon(WORDS, Phonemizer(), INVENTORY)
    heard = Phonemizer().words("France")[0]
    spellings, distance, _ = lexicon.nearest(heard, 3)[0]
    assert spellings == ["France"] and distance == 0
    garbled = heard[:-1] + ["z"]  # one phoneme wrong
    assert any("France" in m.spellings for m in lexicon.nearest(garbled, 3) if m.distance == 1)


def test_lexicon_search_by_length_equals_a_full_scan():
    from rapidfuzz.distance import Levenshtein

    words = [*WORDS, "a", "an", "and", "cattle", "category", "dogs", "doghouse", "frankly", "parasite", "the end"]
    lexicon = Lexicon(words, Phonemizer(), INVENTORY)
    for text in ("cat", "dog house", "Paris", "capitals", "a"):
        for heard in Phonemizer().words(text):
            key = lexicon.key(heard)
            full = sorted((Levenshtein.distance(key, k), i) for i, k in enumerate(lexicon.keys))
            for limit in (1, 4, len(lexicon.keys) + 3):
                found = [(m.distance, lexicon.keys.index(m.key)) for m in lexicon.nearest(heard, limit)]
                assert found == full[:limit], (text, limit)


def test_targets_are_phonemes_with_word_boundaries(model):
    recognizer = model.recognizer
    labels = recognizer.labels("the cat")
    words = Phonemizer().words("the cat")
    assert labels.count(recognizer.boundary) == 1
    assert len(labels) == sum(len(w) for w in words) + 1
    assert 0 not in labels  # the blank is never a target


def test_a_recognizer_not_a_projector(model):
    """It reads the branch's frames (no projector there), its head is the trained state, the LLM is
    lent, not owned, and the prompt's audio positions follow the formula (here: none)."""
    assert model.branches["audio"].projector is None and model.recognizer.trainable
    trained = model.trained_state_dict()
    assert trained and all(k.startswith("recognizer.mlp.") for k in trained), sorted(trained)
    assert not model.processor.dynamic and model.processor.audio_positions(16000) == {}
    assert model.recognizer.in_dim == model.branches["audio"].encoder.dim


def test_train_transcribe_save_and_load_give_the_same_transcripts(model, tmp_path):
    """A few CTC steps on one clip: greedy decoding recovers its words, the LLM's word search picks
    words of the lexicon, the prompt holds them as text, and a saved checkpoint transcribes alike."""
    wave, features = train_on_one_clip(model)
    greedy = model.transcribe_features(features, fused=False)[0].split()
    assert greedy[-1] == "France"
    heard = model.transcribe([wave])
    spelled = {w for names in model.recognizer.lexicon.spellings for name in names for w in name.split()}
    assert len(heard[0].split()) == 5 and set(heard[0].split()) <= spelled  # the words and function words' forms
    batch = model.prepare([[{"role": "user", "content": [{"type": "audio"}]}]], [[wave]])
    assert not bool(batch["slots"].any())  # no audio positions: the transcript is text
    assert f"<text>{heard[0]}</text>" in model.tokenizer.decode(batch["input_ids"][0])
    model.save_pretrained(tmp_path / "ckpt")
    again = LALM.from_pretrained(tmp_path / "ckpt").eval()
    assert again.transcribe([wave]) == heard
    assert again.transcribe_features(features, fused=False)[0].split() == greedy
    assert again.generate([wave], "", max_new_tokens=2) is not None


def test_decoding_settings_change_at_load_and_nothing_else(model, tmp_path):
    from lalm.checkpoint import read_config
    from lalm.cli import load_model

    model.save_pretrained(tmp_path / "ckpt")
    loaded = LALM.from_pretrained(tmp_path / "ckpt", overrides=["model.recognizer.options.lm_beam=1"])
    assert loaded.recognizer.lm_beam == 1 and loaded.config.recognizer.options["lm_beam"] == 1
    for item in ("model.recognizer.head.hidden=64", "model.llm.seed=3", "model.prompt.layout=x"):
        with pytest.raises(ConfigError, match="only its recognizer's decoding settings"):
            read_config(tmp_path / "ckpt", overrides=[item])
    args = argparse.Namespace(model=str(tmp_path / "ckpt"), config=None, device="cpu",
                              overrides=["model.recognizer.options.lm_weight=0"])
    assert load_model(args).recognizer.lm_weight == 0
    from lalm.eval.models import KitResponder
    from lalm.generation import Sampling

    responder = KitResponder.from_checkpoint(tmp_path / "ckpt", Sampling(4, 0.0, 1.0, 0), None, "cpu",
                                             ["model.recognizer.options.lm_beam=2"])
    assert responder.model.recognizer.lm_beam == 2


def test_missing_wordnet_is_an_error_not_another_lexicon(words_file, tmp_path):
    """A checkpoint whose lexicon includes WordNet's lemmas does not quietly decode without them."""
    wordnet = tmp_path / "wordnet"
    wordnet.mkdir()
    (wordnet / "index.noun").write_text("  header line\nspider n 1 1 @ 1 0 01772222\n")
    model = build({"wordnet": str(wordnet), "words": str(words_file)})
    assert any("spider" in names for names in model.recognizer.lexicon.spellings)  # WordNet's lemma
    model.save_pretrained(tmp_path / "ckpt")
    (wordnet / "index.noun").unlink()
    wordnet.rmdir()
    with pytest.raises(LexiconSourceError, match=r"wordnet-base.*model.recognizer.options.wordnet"):
        LALM.from_pretrained(tmp_path / "ckpt")
    # choosing another lexicon is explicit: an inference setting passed at load
    assert LALM.from_pretrained(tmp_path / "ckpt", overrides=["model.recognizer.options.wordnet=null"]).recognizer
    with pytest.raises(LexiconSourceError, match="words: .* does not exist"):
        build({"wordnet": None, "words": str(tmp_path / "none.txt")})


def test_options_are_checked(tmp_path):
    def make(head=None, **options):
        return build_recognizer("phoneme_ctc", None, {"wordnet": None, **options}, head=head or {}, in_dim=4)

    with pytest.raises(ValueError, match="no phoneme inventory for voice 'xx'"):
        make({"voice": "xx"})
    with pytest.raises(ValueError, match="lm_weight"):
        make(lm_weight=-1)
    with pytest.raises(ValueError, match="split_cost"):
        make(split_cost=-1)
    with pytest.raises(ValueError, match="acoustic must be 'ctc' or 'edits'"):
        make(acoustic="viterbi")
    with pytest.raises(RuntimeError, match="decodes with the model's frozen LLM"):
        make().transcribe(torch.randn(1, 10, 4), torch.tensor([10]))


def test_config_problems_name_the_fix():
    def problems(*overrides):
        try:
            load_config(TINY, list(overrides))
        except ConfigError as err:
            return "\n".join(err.problems)
        return ""

    good = recognizer_overrides({"wordnet": None})
    assert problems(*good) == ""
    assert "put it under model.recognizer.head" in problems(*good, "model.recognizer.options.k=3")
    assert "put it under model.recognizer.options" in problems(*good, "model.recognizer.head.lm_beam=3")
    assert "name the branch" in problems(*good, "model.recognizer.branch=null")
    assert "'x' names no branch" in problems(*good, "model.recognizer.branch=x")
    assert "remove path" in problems(*good, "model.recognizer.path=somewhere")
    assert "has no projector, so it has no positions" in problems(
        *good, "model.prompt.layout=<a>{audio}</a>{transcript}")
    assert "only a trained recognizer can read it" in problems("model.branches.0.projector=null")
    assert "phoneme_ctc is a recognizer now" in problems("model.branches.0.projector.name=phoneme_ctc")


def test_word_search_scores_match_the_llm_read_from_scratch(model):
    """The cached, padded, batched search must score a text exactly as one plain forward pass does:
    with a beam wide enough to keep every hypothesis, it finds the brute-force best."""
    import itertools

    from lalm.lm_fusion import user_turn_prefix

    recognizer = model.recognizer
    llm, tokenizer = model.llm, model.tokenizer
    prefix, end = user_turn_prefix(tokenizer)
    # words of 1 to 3 tokens, so spellings pad differently in the cache
    candidates = [[(["cat", "capital"], 0.0), (["Paris"], 3.0)], [(["of", "dog"], 0.0), (["friends"], 6.5)],
                  [(["France", "fries"], 1.0)]]  # (spellings, acoustic cost in nats) per word
    recognizer.lm_beam, recognizer.lm_spellings = 64, 3

    def brute(words, costs):
        ids = tokenizer(" ".join(words), add_special_tokens=False)["input_ids"]
        seq = torch.tensor([prefix + ids + end[:1]])
        logp = llm(input_ids=seq, use_cache=False).logits.float().log_softmax(-1)[0]
        said = sum(float(logp[i - 1, seq[0, i]]) for i in range(len(prefix), seq.shape[1]))
        return said * recognizer.lm_weight - sum(costs)

    options = [[(s, d) for names, d in word for s in names] for word in candidates]
    scored = {tuple(w for w, _ in combo): brute([w for w, _ in combo], [d for _, d in combo])
              for combo in itertools.product(*options)}
    words, score = recognizer._search(candidates)
    best = max(scored, key=scored.get)
    assert tuple(words) == best
    assert score == pytest.approx(scored[best], abs=1e-3)


def test_lexicon_words_put_the_frequent_spelling_first():
    """BPE ids follow merge order, so the lower id is the common spelling of a sound."""
    from lalm.phonemes import lexicon_words

    class Vocab:
        def get_vocab(self):
            return {"ĠIz": 900, "ĠIs": 40, "Ġis": 3, "Ġcat": 7}

        def convert_tokens_to_string(self, pieces):
            return "".join(pieces).replace("Ġ", " ")

    words = lexicon_words(Vocab(), wordnet=None)
    assert words.index("is") < words.index("Is") < words.index("Iz")


def test_ctc_costs_read_what_the_frames_almost_said(model):
    """Greedy phonemes say "cat", but one frame nearly said the "s" of "cats": scored on the frames,
    "cats" costs far less than a whole phoneme edit, and "cat" stays the cheapest."""
    recognizer = model.recognizer
    cat, cats = recognizer.labels("cat"), recognizer.labels("cats")
    s = cats[-1]
    rows = []
    for label in cat:
        rows += [{label: 0.9, 0: 0.1}] * 2
    rows += [{0: 0.55, s: 0.45}, {0: 0.9, recognizer.boundary: 0.1}]
    probs = torch.full((len(rows), recognizer.boundary + 1), 1e-6)
    for t, row in enumerate(rows):
        for label, p in row.items():
            probs[t, label] = p
    frames = (probs / probs.sum(-1, keepdim=True)).log()
    costs = {spelling: cost for spellings, cost in recognizer._candidates(cat, frames) for spelling in spellings}
    assert min(costs, key=costs.get) == "cat"
    assert 0 < costs["cats"] - costs["cat"] < 1.0 < recognizer.distance_cost
    recognizer.acoustic = "edits"
    edits = {spelling: cost for spellings, cost in recognizer._candidates(cat, frames) for spelling in spellings}
    assert edits["cat"] == 0 and edits["cats"] == recognizer.distance_cost


def test_a_missed_word_boundary_is_split_into_two_words(model):
    """Frames that say "cat" then "dog" with no boundary between: one heard word, two lexicon words."""
    recognizer = model.recognizer
    labels = [x for x in recognizer.labels("cat dog") if x != recognizer.boundary]
    probs = torch.full((2 * len(labels), recognizer.boundary + 1), 1e-6)
    for i, label in enumerate(labels):
        probs[2 * i, label], probs[2 * i + 1, 0] = 0.95, 0.95
    frames = (probs / probs.sum(-1, keepdim=True)).log()
    recognizer.split_cost = 4.0
    best, cost = recognizer._candidates(labels, frames)[0]
    assert "cat dog" in best and 4.0 < cost < 5.0  # the halves cost little; the split costs split_cost
    recognizer.split_cost = None
    assert not any(" " in s for spellings, _ in recognizer._candidates(labels, frames) for s in spellings)


def test_batched_transcripts_equal_one_at_a_time(model):
    train_on_one_clip(model)
    rng = np.random.default_rng(0)
    waves = [torch.from_numpy(rng.standard_normal(n).astype(np.float32) * 0.1) for n in (8000, 32000, 20000)]
    assert model.transcribe(waves) == [model.transcribe([w])[0] for w in waves]
