"""Projector contracts: lengths, padding isolation, zeroed padding, gradients, config errors."""

from __future__ import annotations

import pytest
import torch

from lalm.adapters import PROJECTORS, build_projector

IN_DIM, OUT_DIM = 16, 32
LENGTHS = [37, 20, 8, 1]
# Every registered projector with its defaults, plus a multi-query Q-Former, whose self-attention
# only exists with two or more queries.
# The CTC projector's contract case keeps every frame (compress: False); its compressed,
# content-dependent form is covered where lengths need not follow the length rule. (The phoneme CTC
# head is a recognizer, not a projector: tests/test_phoneme_ctc.py.)
CASES = [pytest.param(name, {"compress": False} if name == "ctc" else {}, id=name)
         for name in PROJECTORS.names()] + [
    pytest.param("window_qformer", {"num_queries": 3}, id="window_qformer-3q"),
    pytest.param("pool", {"hidden": 0}, id="pool-linear"),
]
ANY_LENGTH = [*CASES, pytest.param("ctc", {}, id="ctc-compressed")]


def make(name: str, **options: object):
    torch.manual_seed(0)
    projector = build_projector(name, IN_DIM, OUT_DIM, **options)
    if hasattr(projector, "bind_llm"):  # scores against an LLM embedding table: a random one here
        projector.bind_llm(torch.nn.Embedding(50, OUT_DIM), special_ids=[49])
    return projector.eval()


def padded_batch(lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Random features whose padding is huge garbage, so any leak from it shows."""
    torch.manual_seed(1)
    features = torch.randn(len(lengths), max(lengths), IN_DIM)
    for i, n in enumerate(lengths):
        features[i, n:] = 1e4
    return features, torch.tensor(lengths)


def test_all_projectors_registered():
    assert PROJECTORS.names() == ["conv", "ctc", "pool", "stack_mlp", "ultravox", "window_qformer"]


def test_pool_gives_a_fixed_count_and_hears_the_length():
    projector = make("pool", queries=3)
    assert projector.output_lengths(torch.tensor(LENGTHS)).tolist() == [3, 3, 3, 3]
    frame = torch.randn(1, 1, IN_DIM)
    short, _ = projector(frame.expand(1, 10, IN_DIM), torch.tensor([10]))
    long, _ = projector(frame.expand(1, 40, IN_DIM), torch.tensor([40]))
    assert not torch.allclose(short, long)  # same frames, 4x the duration: a rate needs the length


def test_a_linear_pool_extrapolates_along_a_line():
    """hidden 0: one Linear after the standardised statistics, so a clip twice as far from the training
    mean moves the positions exactly twice as far (an MLP can fold back outside its training range)."""
    projector = make("pool", queries=2, hidden=0)
    assert not any(isinstance(m, torch.nn.GELU) for m in projector.modules())
    centre, step = torch.zeros(1, 10, IN_DIM), torch.randn(1, 1, IN_DIM).expand(1, 10, IN_DIM)
    lengths = torch.tensor([10])
    base, once, twice = (projector(centre + k * step, lengths)[0] for k in (0, 1, 2))
    assert torch.allclose(twice - base, 2 * (once - base), atol=1e-4)
    with pytest.raises(ValueError, match="hidden must be a positive integer"):
        make("pool", hidden=-1)


def test_standardize_keeps_the_exact_running_statistics_of_every_training_vector():
    from lalm.adapters.base import Standardize

    torch.manual_seed(0)
    data = torch.randn(50, 4) * torch.tensor([1.0, 10.0, 100.0, 1000.0]) + 7.0
    norm = Standardize(4).train()
    for chunk in (data[:1], data[1:8], data[8:9], data[9:]):  # batches of one train too
        norm(chunk)
    assert norm.count.item() == 50
    assert torch.allclose(norm.mean, data.double().mean(0))
    assert torch.allclose(norm.var, data.double().var(0, unbiased=False))
    out = norm.eval()(data)
    assert norm.count.item() == 50  # eval mode reads the statistics, never moves them
    assert torch.allclose(out.mean(0), torch.zeros(4), atol=1e-4)
    assert torch.allclose(out.std(0, unbiased=False), torch.ones(4), atol=1e-3)


def test_pool_statistics_are_saved_with_the_trained_weights(tiny_config, tmp_path):
    import copy

    from lalm import LALM
    from lalm.checkpoint import load_trained, save_checkpoint

    pooled = copy.deepcopy(tiny_config.model)
    branch = pooled.branches[0]
    branch.projector.name, branch.projector.options = "pool", {"queries": 2}
    model = LALM(pooled).train()
    projector = model.branches[branch.name].projector
    projector(torch.randn(3, 20, projector.in_dim), torch.tensor([20, 11, 5]))  # moves the statistics
    state = model.trained_state_dict()
    assert {f"branches.{branch.name}.projector.norm.{k}" for k in ("count", "mean", "var")} <= set(state)
    save_checkpoint(model, tmp_path)
    fresh = LALM(pooled)
    load_trained(fresh, tmp_path)
    assert torch.equal(fresh.branches[branch.name].projector.norm.mean, projector.norm.mean)
    assert fresh.branches[branch.name].projector.norm.count.item() == 3


@pytest.mark.parametrize(("name", "options"), CASES)
def test_shapes_match_output_lengths(name, options):
    projector = make(name, **options)
    features, lengths = padded_batch(LENGTHS)
    out, out_lengths = projector(features, lengths)
    expected_t = projector.output_lengths(torch.tensor([features.shape[1]])).item()
    assert out.shape == (len(LENGTHS), expected_t, OUT_DIM)
    assert torch.equal(out_lengths, projector.output_lengths(lengths))


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("stack_mlp", {"k": 8}, [5, 3, 1, 1]),
        ("ultravox", {"k": 4}, [10, 5, 2, 1]),
        ("conv", {"k": 8}, [5, 3, 1, 1]),
        ("window_qformer", {"window": 8, "num_queries": 2}, [10, 6, 2, 2]),
    ],
)
def test_output_lengths_keep_partial_tail(name, options, expected):
    projector = make(name, **options)
    assert projector.output_lengths(torch.tensor(LENGTHS)).tolist() == expected


def test_rate_divisor():
    assert make("stack_mlp", k=4).rate_divisor == 4
    assert make("window_qformer", window=8, num_queries=2).rate_divisor == 4


@pytest.mark.parametrize(("name", "options"), ANY_LENGTH)
def test_clip_alone_equals_clip_in_padded_batch(name, options):
    projector = make(name, **options)
    features, lengths = padded_batch(LENGTHS)
    with torch.no_grad():
        batch_out, batch_lengths = projector(features, lengths)
        for i, n in enumerate(LENGTHS):
            alone, alone_lengths = projector(features[i : i + 1, :n], lengths[i : i + 1])
            assert alone_lengths.item() == batch_lengths[i].item()
            torch.testing.assert_close(batch_out[i, : alone.shape[1]], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("name", "options"), ANY_LENGTH)
def test_padded_outputs_are_zero(name, options):
    projector = make(name, **options)
    features, lengths = padded_batch(LENGTHS)
    with torch.no_grad():
        out, out_lengths = projector(features, lengths)
    for i, n in enumerate(out_lengths.tolist()):
        assert torch.isfinite(out[i, :n]).all()
        assert (out[i, n:] == 0).all()


@pytest.mark.parametrize(("name", "options"), CASES)
def test_gradients_reach_every_parameter(name, options):
    projector = make(name, **options).train()
    features, lengths = padded_batch(LENGTHS)
    out, _ = projector(features, lengths)
    (out * torch.randn_like(out)).sum().backward()
    for param_name, param in projector.named_parameters():
        assert param.grad is not None, param_name
        assert torch.isfinite(param.grad).all(), param_name
        assert param.grad.abs().sum() > 0, param_name


def test_unknown_projector_lists_valid_names():
    with pytest.raises(KeyError) as error:
        build_projector("stack_mpl", IN_DIM, OUT_DIM)
    message = str(error.value)
    assert "stack_mpl" in message
    assert all(name in message for name in PROJECTORS.names())


def test_unknown_option_names_projector_and_valid_options():
    with pytest.raises(ValueError, match=r"'stack_mlp'.*stack_factor.*valid options: k, hidden"):
        build_projector("stack_mlp", IN_DIM, OUT_DIM, stack_factor=4)


@pytest.mark.parametrize(
    ("name", "options", "pattern"),
    [
        ("conv", {"k": 0}, r"'conv'.*k must be a positive integer"),
        ("ultravox", {"hidden": 33}, r"'ultravox'.*hidden must be even"),
        ("window_qformer", {"num_heads": 5}, r"'window_qformer'.*num_heads \(5\) must divide dim \(16\)"),
    ],
)
def test_bad_option_values_name_projector_and_option(name, options, pattern):
    with pytest.raises(ValueError, match=pattern):
        build_projector(name, IN_DIM, OUT_DIM, **options)


def test_qformer_last_window_attends_only_to_real_frames():
    """A 3-frame clip in 8-frame windows must match 3-frame windows, which hold no padding at all.

    The window size shapes no parameter, so both projectors can share weights.
    """
    padded_window = make("window_qformer", window=8, num_queries=2)
    exact_window = make("window_qformer", window=3, num_queries=2)
    exact_window.load_state_dict(padded_window.state_dict())
    features, lengths = padded_batch([3])
    with torch.no_grad():
        torch.testing.assert_close(padded_window(features, lengths)[0], exact_window(features, lengths)[0])
