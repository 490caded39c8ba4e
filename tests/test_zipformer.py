"""Zipformer encoder contracts: 25 Hz output, padding isolation, strict reloads, Auden checkpoint dirs."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from lalm.encoders import ENCODERS
from lalm.encoders.zipformer import ZipformerConfig, ZipformerEncoder

# Three stacks at 50, 25 and 12.5 Hz (Auden's real models use six, up to 1/8 rate).
CONFIG = {
    "downsampling_factor": [1, 2, 4], "num_encoder_layers": [1, 2, 1], "encoder_dim": [32, 64, 48],
    "feedforward_dim": [64, 128, 96], "num_heads": [2, 4, 2], "query_head_dim": [8], "value_head_dim": [8],
    "pos_head_dim": [4], "pos_dim": 16, "encoder_unmasked_dim": [32, 32, 32], "cnn_module_kernel": [7, 5, 3],
    "model_type": "zipformer", "dropout": None, "warmup_batches": 4000.0, "chunk_size": [-1],
    "left_context_frames": [-1],
}
SAMPLES = [20800, 11200, 4960, 1200]  # 1.3 s, 0.7 s, 0.31 s, and 75 ms: too short for any output
SHORT = [8000, 5600]  # for the loading tests, which only compare two models


@pytest.fixture(scope="module")
def model() -> ZipformerEncoder:
    return ZipformerEncoder(random_config=CONFIG)


def batch(samples: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    waves = torch.zeros(len(samples), max(samples))
    for i, n in enumerate(samples):
        waves[i, :n] = 0.1 * torch.randn(n)
    return waves, torch.tensor(samples)


def encode(model: ZipformerEncoder, samples: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return model(*batch(samples))


def test_registered_and_described(model):
    assert ENCODERS.get("zipformer") is ZipformerEncoder
    # lalm.model passes random configs as `random_config`.
    twin = ENCODERS.get("zipformer")(path=None, random_config=CONFIG, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(twin.state_dict().values(), model.state_dict().values()))
    assert model.dim == 64 and model.frame_rate == 25.0
    assert model.identity.startswith("zipformer:random-0-") and twin.identity == model.identity
    # another shape with the same seed is another encoder to a feature cache
    assert ENCODERS.get("zipformer")(random_config={**CONFIG, "pos_dim": 8}).identity != model.identity
    assert not any(p.requires_grad for p in model.parameters()) and not model.training


def test_output_rate_is_25_hz(model):
    samples = [16000, 48000]
    out, lengths = encode(model, samples)
    assert out.shape == (2, int(lengths.max()), 64)
    assert lengths.tolist() == model.output_lengths(torch.tensor(samples)).tolist()
    assert torch.isfinite(out).all()
    seconds = torch.arange(1, 61)
    per_clip = model.output_lengths(16000 * seconds)
    assert ((per_clip - 25 * seconds).abs() <= 2).all()


def test_clip_outputs_do_not_depend_on_the_batch(model):
    waves, samples = batch(SAMPLES)
    with torch.no_grad():
        out, lengths = model(waves, samples)
    assert lengths.tolist() == model.output_lengths(samples).tolist()
    assert lengths[-1] == 0
    for i, n in enumerate(SAMPLES):
        with torch.no_grad():
            alone, alone_lengths = model(waves[i : i + 1, :n], samples[i : i + 1])
        t = int(lengths[i])
        assert int(alone_lengths[0]) == t
        # Only float round-off differs: matmuls of other shapes sum in another order.
        torch.testing.assert_close(out[i, :t], alone[0, :t], rtol=0, atol=2e-5)
        assert (out[i, t:] == 0).all()


def test_state_dict_reloads_strictly(model):
    fresh = ZipformerEncoder(random_config=CONFIG, seed=1)
    before, _ = encode(fresh, SHORT)
    expected, _ = encode(model, SHORT)
    assert not torch.allclose(before, expected)
    fresh.load_state_dict(model.state_dict(), strict=True)
    after, _ = encode(fresh, SHORT)
    assert torch.equal(after, expected)


def test_loads_nested_auden_safetensors_dir(model, tmp_path):
    # A composite model: the encoder is `audio_encoder` in a DDP-wrapped state dict, next to an
    # unrelated module and a second Zipformer that must not be picked.
    other = ZipformerEncoder(random_config=CONFIG, seed=5)
    state = {f"module.audio_encoder.{k}": v.clone() for k, v in model.state_dict().items()}
    state |= {f"module.voice_encoder.{k}": v.clone() for k, v in other.state_dict().items()}
    state["module.audio_encoder_projector.weight"] = torch.zeros(2, 2)
    save_file(state, tmp_path / "model.safetensors")
    config = {"model_type": "azeros", "audio_encoder_config": CONFIG}
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = ZipformerEncoder(path=str(tmp_path))
    assert loaded.identity == f"zipformer:{tmp_path}"
    assert torch.equal(encode(loaded, SHORT)[0], encode(model, SHORT)[0])


def test_loads_flat_pt_checkpoint_with_weights_only(model, tmp_path):
    # icefall-style training checkpoint: weights under "model", with the ASR decoder's next to them;
    # Zipformer fields at the top of config.json, as icefall's comma strings.
    state = dict(model.state_dict()) | {"decoder.embedding.weight": torch.zeros(3, 2)}
    torch.save({"model": state, "batch_idx_train": 1000}, tmp_path / "pretrained.pt")
    flat = {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in CONFIG.items()}
    (tmp_path / "config.json").write_text(json.dumps(flat))
    loaded = ZipformerEncoder(path=str(tmp_path))
    assert torch.equal(encode(loaded, SHORT[:1])[0], encode(model, SHORT[:1])[0])


def test_hub_id_downloads_config_and_first_weight_file(model, tmp_path, monkeypatch):
    import huggingface_hub

    state = {f"encoder.{k}": v.clone() for k, v in model.state_dict().items()}
    save_file(state, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps({"encoder_config": CONFIG}))
    asked = []
    files = ["config.json", "model.safetensors", "README.md"]
    monkeypatch.setattr(huggingface_hub, "list_repo_files", lambda repo: files)

    def download(repo: str, name: str) -> str:
        asked.append((repo, name))
        return str(tmp_path / name)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    loaded = ZipformerEncoder(path="AudenAI/auden-encoder-voice")
    assert sorted(asked) == [("AudenAI/auden-encoder-voice", "config.json"),
                             ("AudenAI/auden-encoder-voice", "model.safetensors")]
    assert torch.equal(encode(loaded, SHORT[:1])[0], encode(model, SHORT[:1])[0])


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        ZipformerEncoder()
    with pytest.raises(FileNotFoundError):
        ZipformerEncoder(path=str(tmp_path))
    with pytest.raises(ValueError, match="encoder_dim has 2 values for 3 stacks"):
        ZipformerConfig.from_dict(dict(CONFIG, encoder_dim=[32, 64]))
