"""The one decoding-settings type, end-of-turn rule and device default every caller shares."""

import types

import pytest
import torch

from lalm.generation import Sampling, end_of_turn_ids, resolve_device
from lalm.openai_client import RetryPolicy


def test_greedy_rows_batch_together_whatever_their_seed_sampled_ones_do_not():
    assert Sampling(4, seed=1).batch_key == Sampling(9, seed=2).batch_key == ("greedy",)
    assert Sampling(4, 0.7, seed=1).batch_key != Sampling(4, 0.7, seed=2).batch_key
    assert Sampling(4).generate_kwargs()["do_sample"] is False
    assert Sampling(4, 0.7, 0.9).generate_kwargs() == {"do_sample": True, "temperature": 0.7, "top_p": 0.9, "top_k": None}
    assert Sampling(8, 0.5, seed=3).record() == {"max_new_tokens": 8, "temperature": 0.5, "top_p": 1.0, "seed": 3,
                                                 "decoding": "sampling"}


def test_end_of_turn_is_the_generation_configs_ends_and_the_tokenizers():
    llm = types.SimpleNamespace(generation_config=types.SimpleNamespace(eos_token_id=[7, 3]))
    assert end_of_turn_ids(llm, types.SimpleNamespace(eos_token_id=5)) == [3, 5, 7]
    llm.generation_config.eos_token_id = None
    assert end_of_turn_ids(llm, types.SimpleNamespace(eos_token_id=5)) == [5]


def test_device_default():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == resolve_device(None).type == expected
    assert resolve_device("cpu") == torch.device("cpu")


def test_retry_policy_backoff_doubles_up_to_its_bound():
    policy = RetryPolicy(attempts=5, backoff_s=1, max_backoff_s=3)
    assert [policy.wait(a) for a in (1, 2, 3, 4)] == [1, 2, 3, 3]
    with pytest.raises(ValueError, match="at least one attempt"):
        RetryPolicy(attempts=0)
