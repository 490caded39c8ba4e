"""The CTC projector over the LLM vocabulary: loss, compression, content-dependent prompt lengths."""

from __future__ import annotations

import pytest
import torch

from lalm import LALM, load_config
from lalm.adapters import build_projector
from tests.conftest import TINY

CTC = ["model.branches.0.projector.name=ctc", "model.branches.0.projector.options={k: 2, hidden: 32}"]


@pytest.fixture
def ctc_model():
    return LALM(load_config(TINY, CTC).model)


def bound_projector(vocab: int = 12, dim: int = 6, **options):
    torch.manual_seed(0)
    projector = build_projector("ctc", 4, dim, k=2, hidden=16, **options)
    table = torch.nn.Embedding(vocab, dim)
    projector.bind_llm(table, special_ids=[vocab - 1])
    return projector, table


def test_embedding_table_is_bound_not_owned(ctc_model):
    projector = ctc_model.branches["audio"].projector
    assert projector.table is ctc_model.llm.get_input_embeddings().weight
    trained = ctc_model.trained_state_dict()
    assert not any("embed" in k for k in trained), sorted(trained)
    assert "branches.audio.projector.bias" in trained  # the per-token prior is trained and saved
    assert ctc_model.processor.dynamic == {"audio"}


def test_compression_drops_blanks_and_merges_repeats():
    projector, table = bound_projector()
    # best labels per frame: blank, 5, 5, blank, 5, 7, 7 -> tokens 4, 4, 6 (label = token + 1)
    best = [0, 5, 5, 0, 5, 7, 7]
    probs = torch.full((7, 13), 0.01)
    for t, label in enumerate(best):
        probs[t, label] = 1.0
    probs = probs / probs.sum(-1, keepdim=True)
    out = projector._compress_one(probs, probs.argmax(-1))
    assert out.shape == (3, 6)
    first = probs[1:3].mean(0)[1:]
    assert torch.allclose(out[0], (first / first.sum()) @ table.weight, atol=1e-5)
    last = probs[5:7].mean(0)[1:]
    assert torch.allclose(out[2], (last / last.sum()) @ table.weight, atol=1e-5)
    empty = projector._compress_one(probs[:0], probs[:0].argmax(-1))
    assert empty.shape == (0, 6)


def test_output_counts_follow_the_greedy_transcript_and_specials_never_appear():
    projector, _ = bound_projector()
    features = torch.randn(3, 40, 4) * 3
    lengths = torch.tensor([40, 17, 2])
    out, n = projector(features, lengths)
    ids = projector.greedy_ids(features, lengths)
    assert n.tolist() == [len(i) for i in ids]
    assert out.shape[0] == 3 and out.shape[1] == max(n.tolist())
    assert all(11 not in row for row in ids)  # the special token is masked out
    uncompressed = build_projector("ctc", 4, 6, k=2, hidden=16, compress=False)
    uncompressed.bind_llm(torch.nn.Embedding(12, 6), [])
    _, m = uncompressed(features, lengths)
    assert m.tolist() == [20, 9, 1]


def test_ctc_loss_learns_a_fixed_batch_with_sampled_and_full_softmax():
    for negatives in (0, 3):
        projector, _ = bound_projector(vocab=40, negatives=negatives)
        features = torch.randn(4, 30, 4)
        lengths = torch.tensor([30, 30, 24, 20])
        targets = [[3, 4, 5], [7, 7], [9], [1, 2, 3, 4]]
        optimizer = torch.optim.Adam(projector.parameters(), lr=0.02)
        losses = []
        for _ in range(300):
            loss, tokens = projector.ctc_loss(features, lengths, targets)
            optimizer.zero_grad()
            (loss / tokens).backward()
            optimizer.step()
            losses.append(float(loss.detach()) / tokens)
        assert tokens == 10
        assert losses[-1] < 0.3 * losses[0], (negatives, losses[0], losses[-1])
        projector.eval()
        assert projector.greedy_ids(features, lengths) == targets, negatives


def test_prompts_are_built_after_projection_with_exact_counts(ctc_model, rng):
    clips = [rng.standard_normal(n).astype("float32") * 0.1 for n in (16000, 5000)]
    batch = ctc_model.prepare([[{"role": "user", "content": [{"type": "audio"}]}]] * 2, [[c] for c in clips])
    counts = [int(n) for n in batch["audio"]["audio"][1]]
    assert [(row == 1).sum().item() for row in batch["slots"]] == counts
    answers = ctc_model.generate_batch([[{"role": "user", "content": [{"type": "audio"}]}]] * 2, [[c] for c in clips],
                                       max_new_tokens=3)
    assert len(answers) == 2
    with pytest.raises(ValueError, match="content-dependent"):
        ctc_model.processor.encode([{"role": "user", "content": [{"type": "audio"}]}], [16000])
    wrong = ctc_model.processor.encode([{"role": "user", "content": [{"type": "audio"}]}], [{"audio": counts[0] + 1}])
    ids = torch.tensor([wrong.input_ids])
    feats, lengths = batch["audio"]["audio"]
    with pytest.raises(ValueError, match=rf"{counts[0] + 1} audio positions but the projector produced {counts[0]}"):
        ctc_model.embed(ids, torch.tensor([wrong.slots]), {"audio": (feats[:1], lengths[:1])})


def test_lm_fusion_finds_the_jointly_best_tokens(ctc_model):
    """With a beam as wide as every path, fusion's choice is the exact argmax of CTC + weight x LLM scores."""
    import itertools

    from lalm.lm_fusion import fuse, user_turn_prefix

    llm, tok = ctc_model.llm, ctc_model.tokenizer
    prefix, end = user_turn_prefix(tok)
    assert tok.decode(prefix).endswith("user\n") and tok.decode(end[:1]) == "<|im_end|>"
    torch.manual_seed(3)
    candidates = [(torch.tensor(ids), torch.randn(3).log_softmax(0)) for ids in ([40, 50, 60], [70, 80, 90], [41, 42, 43])]

    def score(path):
        ids = torch.tensor([prefix + list(path) + end[:1]])
        logp = llm(input_ids=ids).logits[0].float().log_softmax(-1)
        lm = sum(float(logp[len(prefix) - 1 + i, t]) for i, t in enumerate([*path, end[0]]))
        ctc = sum(float(c[1][list(c[0]).index(t)]) for c, t in zip(candidates, path))
        return ctc + 2.0 * lm

    with torch.no_grad():
        best = max(itertools.product(*[c[0].tolist() for c in candidates]), key=score)
        assert fuse(llm, prefix, end, candidates, weight=2.0, beam=27) == list(best)
        assert fuse(llm, prefix, end, candidates, weight=0.0, beam=4) == [int(c[0][c[1].argmax()]) for c in candidates]


def test_fusion_is_an_inference_option_that_keeps_counts(ctc_model, rng):
    projector = ctc_model.branches["audio"].projector
    clips = [rng.standard_normal(n).astype("float32") * 0.1 for n in (16000, 7000)]
    greedy = ctc_model.transcribe(clips)
    projector.lm_weight = 1.0
    ctc_model.eval()
    features = ctc_model.batch_clips([ctc_model.encode_clip(c) for c in clips])
    fused_ids = projector.heard_ids(*features["audio"])
    assert [len(i) for i in fused_ids] == [len(i) for i in projector.greedy_ids(*features["audio"])]
    out, n = projector(*features["audio"])
    assert n.tolist() == [len(i) for i in fused_ids]
    assert torch.equal(out[0, : n[0]], projector.table[torch.tensor(fused_ids[0], dtype=torch.long)])
    projector.train()
    assert not projector.fusing  # training always sees the CTC posteriors
    assert len(greedy) == 2
    with pytest.raises(ValueError, match="needs compress"):
        build_projector("ctc", 4, 6, compress=False, lm_weight=0.5)
