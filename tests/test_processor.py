"""The processor from the config alone, and the clip unit: one batched encode path for every caller."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from conftest import ROOT, TINY

from lalm import LALM, load_config
from lalm.adapters import PROJECTORS
from lalm.clips import EncodedClip, batch_clips
from lalm.processor import LALMProcessor
from lalm.train.config import AlignConfig

SAMPLES = [1, 400, 16000, 16000 * 3 + 123, 16000 * 31]  # under a frame, a second, a second window
QUESTION = [{"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": "what is said?"}]}]
# Every registered projector with options whose lengths differ from the defaults'.
PROJECTOR_CASES = {"conv": {"k": 3}, "ctc": {"k": 3, "compress": False}, "pool": {"queries": 2},
                   "stack_mlp": {"k": 5}, "ultravox": {"k": 2}, "window_qformer": {"window": 4, "num_queries": 3}}


def test_every_projector_has_a_case():
    assert sorted(PROJECTOR_CASES) == PROJECTORS.names()


def real_positions(model: LALM, name: str, samples: int) -> int:
    """Positions a clip really gets: the built encoder's frames through the built projector's rule."""
    branch = model.branches[name]
    wave = torch.zeros(1, samples)
    _, frames = branch.encoder(wave, torch.tensor([samples]))
    return int(branch.projector.output_lengths(frames)[0])


@pytest.mark.parametrize("projector", sorted(PROJECTOR_CASES))
def test_counts_from_the_config_equal_the_built_models(projector):
    config = load_config(TINY, [f"model.branches.0.projector.name={projector}",
                                f"model.branches.0.projector.options={PROJECTOR_CASES[projector]}"]).model
    processor = LALMProcessor.from_config(config)
    model = LALM(config)
    for option, value in PROJECTOR_CASES[projector].items():  # the options did reach the model
        assert getattr(model.branches["audio"].projector, option, value) == value
    for samples in SAMPLES:
        assert processor.audio_positions(samples) == {"audio": real_positions(model, "audio", samples)}


def test_a_zipformer_and_a_whisper_branch_from_the_config():
    config = load_config(ROOT / "configs" / "tiny_dual_stage2.yaml", cls=AlignConfig).model
    processor, model = LALMProcessor.from_config(config), LALM(config)
    for samples in SAMPLES[1:4]:
        assert processor.audio_positions(samples) == {b: real_positions(model, b, samples) for b in model.branches}


@pytest.mark.parametrize(("projector", "dynamic"), [("ctc", True), ("stack_mlp", False)])
def test_content_dependent_projectors_are_known_from_the_config(projector, dynamic):
    cls = PROJECTORS.get(projector)
    assert cls.content_dependent({}) is dynamic
    if projector == "ctc":
        assert cls.content_dependent({"compress": False}) is False


def test_the_processor_needs_no_model_and_travels_to_workers(monkeypatch):
    """Built from the config with the LLM's weights unloadable: only the tokenizer is read; pickled
    (what a spawned DataLoader worker gets), it prompts exactly as before."""
    import transformers

    def no_llm(*args, **kwargs):
        raise AssertionError("the processor must not build the LLM")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_config", no_llm)
    processor = LALMProcessor.from_config(load_config(TINY).model)
    copy = pickle.loads(pickle.dumps(processor))
    for samples in SAMPLES[1:]:
        a, b = processor.encode(QUESTION, [samples], "an answer"), copy.encode(QUESTION, [samples], "an answer")
        assert (a.input_ids, a.slots, a.labels) == (b.input_ids, b.slots, b.labels)
        assert a.slots.count(1) == processor.audio_positions(samples)["audio"]
    assert not any(isinstance(v, torch.nn.Module) for v in vars(processor).values())


@pytest.fixture(scope="module")
def model():
    return LALM(load_config(TINY).model).eval()


def clips_of(lengths: list[int]) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.standard_normal(n).astype(np.float32) for n in lengths]


def test_a_batch_of_clips_encodes_as_each_clip_alone(model):
    waves = clips_of([16000 * 2, 5000, 16000 * 31])
    together = model.encode_clips(waves)
    for wave, clip in zip(waves, together):
        alone = model.encode_clip(wave)
        assert clip.samples == alone.samples == len(wave)
        torch.testing.assert_close(clip.features["audio"], alone.features["audio"], rtol=1e-4, atol=1e-5)


def test_a_generation_batch_runs_the_encoders_once_and_reuses_encoded_clips(model, monkeypatch):
    calls = []
    encode_audio = model.encode_audio

    def counting(waveforms, lengths):
        calls.append(len(lengths))
        return encode_audio(waveforms, lengths)

    monkeypatch.setattr(model, "encode_audio", counting)
    kept = model.encode_clip(clips_of([7000])[0])
    calls.clear()
    waves = clips_of([16000, 9000, 3000])
    model.prepare([QUESTION, QUESTION, QUESTION + QUESTION], [[waves[0]], [kept], [waves[1], waves[2]]])
    assert calls == [3]  # one encoder call for the three new clips; the kept one is not encoded again


def test_cached_and_fresh_clips_batch_alike(model, tmp_path):
    """The feature cache stores the clip unit itself: a cached clip batches exactly as a fresh one."""
    import soundfile as sf

    from lalm.train.feature_cache import FeatureCache

    wave = clips_of([12000])[0] * 0.1
    sf.write(tmp_path / "a.wav", wave, 16000, subtype="FLOAT")
    cache = FeatureCache(tmp_path / "cache", {n: b.encoder for n, b in model.branches.items()})
    assert cache.fill(model, [str(tmp_path / "a.wav")], batch_seconds=10) == 1
    cached = cache.get(str(tmp_path / "a.wav"))
    fresh = model.encode_clip(wave)
    assert isinstance(cached, EncodedClip) and cached.samples == fresh.samples
    (a, la), (b, lb) = batch_clips([cached], ["audio"])["audio"], batch_clips([fresh], ["audio"])["audio"]
    assert torch.equal(la, lb)
    torch.testing.assert_close(a, b)
