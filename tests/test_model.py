"""The splice, the frozen/trainable split, generation and checkpoints on tiny random models."""

import numpy as np
import pytest
import torch

from lalm import LALM
from lalm.model import pad_waveforms
from lalm.processor import IGNORE, collate


def user_audio(text="what is said?"):
    return [{"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": text}]}]


def training_batch(model, clips, targets):
    enc = [model.processor.encode(user_audio(), [len(c)], target=t) for c, t in zip(clips, targets)]
    batch = collate(enc, model.tokenizer.pad_token_id)
    batch["waveforms"], batch["wave_lengths"] = pad_waveforms([torch.tensor(c) for c in clips])
    return batch


def test_processor_expands_placeholder_to_projector_length(tiny_model):
    samples = 16000 * 3 + 123
    enc = tiny_model.processor.encode(user_audio(), [samples])
    branch = tiny_model.branches["audio"]
    expected = int(branch.projector.output_lengths(branch.encoder.output_lengths(torch.tensor([samples])))[0])
    assert enc.slots.count(1) == expected
    text = tiny_model.tokenizer.decode([i for i, s in zip(enc.input_ids, enc.slots) if s == 0])
    assert text.startswith("<|im_start|>user\n<audio></audio>what is said?<|im_end|>")


def test_splice_places_exact_values_at_exact_positions(tiny_model, rng):
    clips = [rng.standard_normal(16000 * 2).astype(np.float32), rng.standard_normal(5000).astype(np.float32)]
    batch = tiny_model.prepare([user_audio(), user_audio()], [[clips[0]], [clips[1]]])
    audio = batch["audio"]
    embeds = tiny_model.embed(batch["input_ids"], batch["slots"], audio)
    table = tiny_model.llm.get_input_embeddings()
    feats, lengths = audio["audio"]
    for row in range(2):
        where = (batch["slots"][row] == 1).nonzero().flatten()
        assert len(where) == lengths[row]
        assert torch.equal(embeds[row, where], feats[row, : lengths[row]])
        text = (batch["slots"][row] == 0).nonzero().flatten()
        assert torch.equal(embeds[row, text], table(batch["input_ids"][row, text]))
        assert bool((where[1:] - where[:-1] == 1).all()), "audio positions are contiguous"


def test_count_mismatch_raises_with_both_counts(tiny_model, rng):
    clip = rng.standard_normal(16000).astype(np.float32)
    batch = tiny_model.prepare([user_audio()], [[clip]])
    audio = batch["audio"]
    slots = batch["slots"].clone()
    slots[0, (slots[0] == 1).nonzero()[0]] = 0
    n = int((batch["slots"] == 1).sum())
    with pytest.raises(ValueError, match=f"{n - 1} audio positions but the projector produced {n} frames"):
        tiny_model.embed(batch["input_ids"], slots, audio)


def test_padded_audio_frames_never_reach_the_llm(tiny_model, rng):
    short = rng.standard_normal(8000).astype(np.float32)
    long = rng.standard_normal(40000).astype(np.float32)
    alone = tiny_model.prepare([user_audio()], [[short]])
    together = tiny_model.prepare([user_audio(), user_audio()], [[short], [long]])
    e1 = tiny_model.embed(alone["input_ids"], alone["slots"], alone["audio"])
    e2 = tiny_model.embed(together["input_ids"], together["slots"], together["audio"])
    n = alone["slots"].shape[1]
    assert torch.allclose(e1[0], e2[0, -n:], atol=1e-5)


def test_only_projector_gets_gradients(tiny_model, rng):
    clips = [rng.standard_normal(12000).astype(np.float32), rng.standard_normal(20000).astype(np.float32)]
    out = tiny_model.train()(**training_batch(tiny_model, clips, ["hello there", "yes"]))
    (out["loss_sum"] / out["num_tokens"]).backward()
    assert int(out["num_tokens"]) == len("hello there") + len("yes") + 2  # bytes + <|im_end|> each
    for name, p in tiny_model.named_parameters():
        if ".projector." in name:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None and not p.requires_grad, name


def test_lora_trains_with_projector(tiny_config, rng):
    from lalm.config import load_config
    from tests.conftest import TINY

    cfg = load_config(TINY, ["model.llm.lora.enabled=true"])
    model = LALM(cfg.model)
    out = model.train()(**training_batch(model, [rng.standard_normal(9000).astype(np.float32)], ["ok"]))
    out["loss_sum"].backward()
    graded = {n for n, p in model.named_parameters() if p.grad is not None}
    assert graded and all(".projector." in n or "lora_" in n for n in graded)
    assert any("lora_B" in n for n in graded)
    print(model.parameter_report())


def test_truncated_targets_do_not_supervise_end_of_turn(tiny_model):
    full = tiny_model.processor.encode(user_audio(), [16000], target="abc")
    cut = tiny_model.processor.encode(user_audio(), [16000], target="abc", supervise_end=False)
    assert [t for t in full.labels if t != IGNORE][-1] == tiny_model.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tiny_model.tokenizer.decode([t for t in cut.labels if t != IGNORE]) == "abc"


def test_vocabulary_is_not_resized(tiny_model):
    # Against an LLM built apart from the kit (same config and seed): `resize_token_embeddings` or an
    # added placeholder token would change the rows, the tokenizer, or both.
    from lalm.llm import load_llm

    plain, tokenizer = load_llm(tiny_model.config.llm)
    assert len(tiny_model.tokenizer) == len(tokenizer)
    assert torch.equal(tiny_model.llm.get_input_embeddings().weight, plain.get_input_embeddings().weight)
    assert torch.equal(tiny_model.llm.get_output_embeddings().weight, plain.get_output_embeddings().weight)


def test_checkpoint_round_trip_gives_identical_outputs(tiny_model, tmp_path, rng):
    with torch.no_grad():
        for p in tiny_model.branches["audio"].projector.parameters():
            p.add_(torch.randn_like(p))
    clip = rng.standard_normal(16000).astype(np.float32)
    batch = training_batch(tiny_model, [clip], ["answer"])
    before = tiny_model(**batch)["loss_sum"]
    tiny_model.save_pretrained(tmp_path / "ckpt")
    tiny_model.save_pretrained(tmp_path / "ckpt")  # overwriting an existing checkpoint is atomic too
    restored = LALM.from_pretrained(tmp_path / "ckpt")
    assert torch.equal(restored(**batch)["loss_sum"], before)
    assert restored.generate([clip], "hi", max_new_tokens=6) == tiny_model.generate([clip], "hi", max_new_tokens=6)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["base_models.json", "config.yaml", "trained.safetensors"]


def test_checkpoint_that_does_not_fit_is_refused(tiny_model, tmp_path):
    from safetensors.torch import save_file

    tiny_model.save_pretrained(tmp_path / "ckpt")
    save_file({"junk": torch.zeros(1)}, tmp_path / "ckpt" / "trained.safetensors")
    with pytest.raises(ValueError, match="does not fit"):
        LALM.from_pretrained(tmp_path / "ckpt")
    with pytest.raises(FileNotFoundError, match="not a kit checkpoint"):
        LALM.from_pretrained(tmp_path)


def test_one_strictness_rule_for_trained_weights(tiny_model, tmp_path):
    from lalm.checkpoint import load_trained

    state = tiny_model.trained_state_dict()
    some = dict(list(state.items())[:1])
    with pytest.raises(ValueError, match="missing"):
        load_trained(tiny_model, some)  # a checkpoint or a resume: everything trained must be there
    assert load_trained(tiny_model, some, partial=True) == sorted(set(state) - set(some))  # a new stage
    with pytest.raises(ValueError, match="unexpected \\['junk'\\]"):
        load_trained(tiny_model, {**state, "junk": torch.zeros(1)}, partial=True)  # never silently dropped
    name = next(iter(state))
    wider = {**state, name: torch.zeros(*state[name].shape[:-1], state[name].shape[-1] + 1)}
    with pytest.raises(ValueError, match=f"{name} \\[.*\\] saved, .*changed width"):
        load_trained(tiny_model, wider)  # named, not torch's size-mismatch traceback


def test_generate_multi_turn_and_batched(tiny_model, rng):
    a, b = (rng.standard_normal(n).astype(np.float32) for n in (16000, 24000))
    conversation = [
        {"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": "first"}]},
        {"role": "assistant", "content": "reply"},
        {"role": "user", "content": [{"type": "audio"}]},
    ]
    single = tiny_model.generate([a, b], conversation, max_new_tokens=5)
    batched = tiny_model.generate_batch([conversation, user_audio()], [[a, b], [a]], max_new_tokens=5)
    assert isinstance(single, str)
    assert batched[0] == single
    with pytest.raises(ValueError, match="2 audio parts but 1 clips"):
        tiny_model.generate([a], conversation)


def test_encoded_clips_are_reused_and_text_only_works(tiny_model, rng):
    clip = rng.standard_normal(16000).astype(np.float32)
    encoded = tiny_model.encode_clip(clip)
    assert tiny_model.generate([encoded], "hi", max_new_tokens=5) == tiny_model.generate([clip], "hi", max_new_tokens=5)
    text_only = tiny_model.generate([], "just text", max_new_tokens=5)
    assert isinstance(text_only, str)


@pytest.mark.parametrize("name, width, frames", [("fbank", 80, 102), ("prosody", 27, 102)])  # 16321 samples / 160
def test_an_encoder_without_weights_builds_trains_and_counts_from_the_config(rng, name, width, frames):
    """fbank (log-mels) and prosody (pitch, voicing, loudness), no network, are registry encoders like
    any other: the processor's count, made from the config alone, matches their frames through the
    projector, and a step trains."""
    from lalm.config import ConfigError, load_config
    from tests.conftest import TINY

    where = "model.branches.0.encoder"
    cfg = load_config(TINY, [f"{where}.name={name}", f"{where}.path=null", f"{where}.random_config=null"])
    model = LALM(cfg.model)
    clip = rng.standard_normal(16000 + 321).astype(np.float32)
    batch = training_batch(model, [clip], ["ok"])
    feats = model.encode_audio(batch["waveforms"], batch["wave_lengths"])
    assert feats["audio"][0].shape[-1] == width and int(feats["audio"][1][0]) == frames
    out = model.train()(**batch)
    out["loss_sum"].backward()
    assert all(".projector." in n for n, p in model.named_parameters() if p.grad is not None)
    with pytest.raises(ConfigError, match="has no weights; remove `path`"):
        load_config(TINY, [f"{where}.name={name}"])  # tiny's random_config is still set
