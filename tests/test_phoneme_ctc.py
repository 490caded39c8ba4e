"""The phoneme CTC projector: espeak-ng targets, lexicon search, decoding and LLM rescoring."""

from __future__ import annotations

import pytest
import torch

from lalm import LALM, load_config
from lalm.adapters import build_projector
from lalm.phonemes import Lexicon, Phonemizer, PhonemizerError
from tests.conftest import TINY

try:
    Phonemizer()
except PhonemizerError:
    pytest.skip("espeak-ng's library is not installed", allow_module_level=True)

WORDS = ["cat", "cats", "dog", "France", "friends", "fries", "the", "capital", "of", "is", "Paris"]


@pytest.fixture
def words_file(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("\n".join(WORDS) + "\n")
    return path


@pytest.fixture
def model(words_file):
    options = f"{{k: 2, hidden: 32, wordnet: null, words: {words_file}, lm_beam: 3, lm_candidates: 3}}"
    return LALM(load_config(TINY, ["model.branches.0.projector.name=phoneme_ctc",
                                   f"model.branches.0.projector.options={options}"]).model)


def test_phonemizer_gives_words_of_known_phonemes():
    projector = build_projector("phoneme_ctc", 4, 8, wordnet=None)
    words = Phonemizer().words("The capital of France, is Paris.")
    assert len(words) == 6
    assert all(p in projector.inventory for w in words for p in w)  # the shipped inventory covers English
    assert Phonemizer().words("") == []


def test_lexicon_finds_the_nearest_pronunciation():
    lexicon = Lexicon(WORDS, Phonemizer(), build_projector("phoneme_ctc", 4, 8).inventory)
    heard = Phonemizer().words("France")[0]
    spellings, distance, _ = lexicon.nearest(heard, 3)[0]
    assert spellings == ["France"] and distance == 0
    garbled = heard[:-1] + ["z"]  # one phoneme wrong
    assert any("France" in m.spellings for m in lexicon.nearest(garbled, 3) if m.distance == 1)



def test_lexicon_search_by_length_equals_a_full_scan():
    from rapidfuzz.distance import Levenshtein

    words = [*WORDS, "a", "an", "and", "cattle", "category", "dogs", "doghouse", "frankly", "parasite", "the end"]
    lexicon = Lexicon(words, Phonemizer(), build_projector("phoneme_ctc", 4, 8).inventory)
    for text in ("cat", "dog house", "Paris", "capitals", "a"):
        for heard in Phonemizer().words(text):
            key = lexicon.key(heard)
            full = sorted((Levenshtein.distance(key, k), i) for i, k in enumerate(lexicon.keys))
            for limit in (1, 4, len(lexicon.keys) + 3):
                found = [(m.distance, lexicon.keys.index(m.key)) for m in lexicon.nearest(heard, limit)]
                assert found == full[:limit], (text, limit)


def test_targets_are_phonemes_with_word_boundaries(model):
    projector = model.branches["audio"].projector
    labels = projector.labels("the cat")
    words = Phonemizer().words("the cat")
    assert labels.count(projector.boundary) == 1
    assert len(labels) == sum(len(w) for w in words) + 1
    assert 0 not in labels  # the blank is never a target


def test_overfit_one_clip_then_decode_words_and_embeddings(model):
    """The head learns a transcript's phonemes; decoding recovers its words and emits their embeddings."""
    projector = model.branches["audio"].projector
    tokenizer = model.tokenizer
    torch.manual_seed(0)
    features, lengths = torch.randn(1, 60, projector.in_dim), torch.tensor([60])
    target = [tokenizer("the cat is in France", add_special_tokens=False)["input_ids"]]
    optimizer = torch.optim.Adam(projector.parameters(), lr=3e-3)
    projector.train()
    first = None
    for _ in range(150):
        loss, n = projector.ctc_loss(features, lengths, target)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    projector.eval()
    assert loss.item() < first / 10
    assert projector.heard_text(features, lengths, fused=False)[0].split()[-1] == "France"
    out, n = projector(features, lengths)
    ids = projector.heard_ids(features, lengths)[0]
    assert int(n[0]) == len(ids) > 0
    table = model.llm.get_input_embeddings().weight
    assert torch.equal(out[0, : len(ids)], table[torch.tensor(ids)].to(out.dtype))
    fused = projector.heard_text(features, lengths)[0].split()
    spelled = {w for names in projector.lexicon.spellings for name in names for w in name.split()}
    assert len(fused) == 5 and set(fused) <= spelled  # the words list and the function words' own forms


def test_llm_is_bound_not_owned(model):
    trained = model.trained_state_dict()
    assert trained and all(".mlp." in k for k in trained), sorted(trained)
    assert model.processor.dynamic == {"audio"}


def test_options_are_checked():
    with pytest.raises(ValueError, match="no phoneme inventory for voice 'xx'"):
        build_projector("phoneme_ctc", 4, 8, voice="xx")
    with pytest.raises(ValueError, match="lm_weight"):
        build_projector("phoneme_ctc", 4, 8, lm_weight=-1)
    with pytest.raises(ValueError, match="split_cost"):
        build_projector("phoneme_ctc", 4, 8, split_cost=-1)
    with pytest.raises(ValueError, match="acoustic must be 'ctc' or 'edits'"):
        build_projector("phoneme_ctc", 4, 8, acoustic="viterbi")


def test_word_search_scores_match_the_llm_read_from_scratch(model):
    """The cached, padded, batched search must score a text exactly as one plain forward pass does:
    with a beam wide enough to keep every hypothesis, it finds the brute-force best."""
    import itertools

    projector = model.branches["audio"].projector
    _, llm, tokenizer, prefix, end = projector._llm()
    # words of 1 to 3 tokens, so spellings pad differently in the cache
    candidates = [[(["cat", "capital"], 0.0), (["Paris"], 3.0)], [(["of", "dog"], 0.0), (["friends"], 6.5)],
                  [(["France", "fries"], 1.0)]]  # (spellings, acoustic cost in nats) per word
    projector.lm_beam, projector.lm_spellings = 64, 3

    def brute(words, costs):
        ids = tokenizer(" ".join(words), add_special_tokens=False)["input_ids"]
        seq = torch.tensor([prefix + ids + end[:1]])
        logp = llm(input_ids=seq, use_cache=False).logits.float().log_softmax(-1)[0]
        said = sum(float(logp[i - 1, seq[0, i]]) for i in range(len(prefix), seq.shape[1]))
        return said * projector.lm_weight - sum(costs)

    options = [[(s, d) for names, d in word for s in names] for word in candidates]
    scored = {tuple(w for w, _ in combo): brute([w for w, _ in combo], [d for _, d in combo])
              for combo in itertools.product(*options)}
    words, score = projector._search(candidates)
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
    projector = model.branches["audio"].projector
    cat, cats = projector.labels("cat"), projector.labels("cats")
    s = cats[-1]
    rows = []
    for label in cat:
        rows += [{label: 0.9, 0: 0.1}] * 2
    rows += [{0: 0.55, s: 0.45}, {0: 0.9, projector.boundary: 0.1}]
    probs = torch.full((len(rows), projector.boundary + 1), 1e-6)
    for t, row in enumerate(rows):
        for label, p in row.items():
            probs[t, label] = p
    frames = (probs / probs.sum(-1, keepdim=True)).log()
    costs = {spelling: cost for spellings, cost in projector._candidates(cat, frames) for spelling in spellings}
    assert min(costs, key=costs.get) == "cat"
    assert 0 < costs["cats"] - costs["cat"] < 1.0 < projector.distance_cost
    projector.acoustic = "edits"
    edits = {spelling: cost for spellings, cost in projector._candidates(cat, frames) for spelling in spellings}
    assert edits["cat"] == 0 and edits["cats"] == projector.distance_cost


def test_a_missed_word_boundary_is_split_into_two_words(model):
    """Frames that say "cat" then "dog" with no boundary between: one heard word, two lexicon words."""
    projector = model.branches["audio"].projector
    labels = [x for x in projector.labels("cat dog") if x != projector.boundary]
    probs = torch.full((2 * len(labels), projector.boundary + 1), 1e-6)
    for i, label in enumerate(labels):
        probs[2 * i, label], probs[2 * i + 1, 0] = 0.95, 0.95
    frames = (probs / probs.sum(-1, keepdim=True)).log()
    projector.split_cost = 4.0
    best, cost = projector._candidates(labels, frames)[0]
    assert "cat dog" in best and 4.0 < cost < 5.0  # the halves cost little; the split costs split_cost
    projector.split_cost = None
    assert not any(" " in s for spellings, _ in projector._candidates(labels, frames) for s in spellings)
