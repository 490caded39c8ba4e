"""The `hf` encoder: tiny random transformers audio models of each family, saved with save_pretrained
(model + feature extractor) into a temporary folder; nothing is downloaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lalm.encoders import ENCODERS
from lalm.eval.probing.encoders import parse_spec
from lalm.model import pad_waveforms
from tests.helpers import align

ROOT = Path(__file__).resolve().parents[1]
# The real conv stack of wav2vec2-style models (50 Hz), at a tiny width.
CONV = {
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "conv_dim": (8,) * 7,
    "conv_stride": (5, 2, 2, 2, 2, 2, 2),
    "conv_kernel": (10, 3, 3, 3, 3, 2, 2),
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
}
FAMILIES = [
    "wav2vec2",
    "wav2vec2_layernorm",
    "hubert",
    "wavlm",
    "data2vec-audio",
    "ast",
    "clap",
    "clap_full",
    "clap_fused",
    "wav2vec2_ctc",
    "qwen2_audio_full",
    "whisper",
    "qwen2_audio_encoder",
]


def save_tiny(kind: str, folder: Path) -> Path:
    """A tiny random model of `kind` and its feature extractor, as `save_pretrained` writes them."""
    import transformers as tf

    torch.manual_seed(0)
    if kind in ("wav2vec2", "wav2vec2_layernorm"):
        norm = (
            {"feat_extract_norm": "layer", "do_stable_layer_norm": True} if kind.endswith("layernorm") else {}
        )
        model, extractor = tf.Wav2Vec2Model(tf.Wav2Vec2Config(**CONV, **norm)), tf.Wav2Vec2FeatureExtractor()
    elif kind == "hubert":
        model, extractor = tf.HubertModel(tf.HubertConfig(**CONV)), tf.Wav2Vec2FeatureExtractor()
    elif kind == "wavlm":
        model = tf.WavLMModel(tf.WavLMConfig(**CONV, num_buckets=8, max_bucket_distance=20))
        extractor = tf.Wav2Vec2FeatureExtractor(return_attention_mask=True)
    elif kind == "data2vec-audio":
        model = tf.Data2VecAudioModel(
            tf.Data2VecAudioConfig(**{**CONV, "num_conv_pos_embeddings": 3}, conv_pos_kernel_size=3)
        )
        extractor = tf.Wav2Vec2FeatureExtractor(return_attention_mask=True)
    elif kind == "ast":
        model = tf.ASTModel(
            tf.ASTConfig(
                hidden_size=16,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=32,
                max_length=64,
                num_mel_bins=32,
            )
        )
        extractor = tf.ASTFeatureExtractor(num_mel_bins=32, max_length=64)
    elif kind == "wav2vec2_ctc":  # a fine-tuned folder: AutoModel keeps the base model
        model, extractor = (
            tf.Wav2Vec2ForCTC(tf.Wav2Vec2Config(**CONV, vocab_size=10)),
            tf.Wav2Vec2FeatureExtractor(),
        )
    elif kind == "qwen2_audio_full":  # the whole Qwen2-Audio: only its audio tower is loaded
        text = {
            "model_type": "qwen2",
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "vocab_size": 64,
        }
        audio = {
            "d_model": 16,
            "encoder_layers": 2,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 32,
            "num_mel_bins": 80,
        }
        model = tf.Qwen2AudioForConditionalGeneration(
            tf.Qwen2AudioConfig(audio_config=audio, text_config=text)
        )
        extractor = tf.WhisperFeatureExtractor(feature_size=80)
    elif kind in ("clap", "clap_full", "clap_fused"):
        audio = {
            "spec_size": 64,
            "num_mel_bins": 16,
            "patch_embeds_hidden_size": 8,
            "hidden_size": 32,
            "depths": [1, 1, 1],
            "num_attention_heads": [2, 2, 2],
            "window_size": 4,
        }
        if kind != "clap_full":
            model = tf.ClapAudioModel(tf.ClapAudioConfig(**audio, enable_fusion=kind == "clap_fused"))
        else:
            text = {
                "vocab_size": 50,
                "hidden_size": 16,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 32,
                "max_position_embeddings": 40,
            }
            model = tf.ClapModel(tf.ClapConfig(text_config=text, audio_config=audio, projection_dim=8))
        extractor = tf.ClapFeatureExtractor(feature_size=16, max_length_s=2)
    elif kind == "whisper":
        model = tf.WhisperModel(
            tf.WhisperConfig(
                d_model=16,
                encoder_layers=2,
                decoder_layers=1,
                encoder_attention_heads=2,
                decoder_attention_heads=2,
                encoder_ffn_dim=32,
                decoder_ffn_dim=32,
                num_mel_bins=80,
            )
        )
        extractor = tf.WhisperFeatureExtractor(feature_size=80)
    else:
        model = tf.Qwen2AudioEncoder(
            tf.Qwen2AudioEncoderConfig(
                d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32, num_mel_bins=80
            )
        )
        extractor = tf.WhisperFeatureExtractor(feature_size=80)
    model.save_pretrained(folder / kind)
    extractor.save_pretrained(folder / kind)
    return folder / kind


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf")
    return {kind: save_tiny(kind, root) for kind in FAMILIES}


def clips() -> list[torch.Tensor]:
    """Clips of unlike lengths: one over CLAP's and AST's windows, one shorter than a conv frame."""
    gen = torch.Generator().manual_seed(1)
    return [0.1 * torch.randn(n, generator=gen) for n in (16000, 7000, 45000, 300)]


def test_a_last_window_shorter_than_an_analysis_frame_still_encodes(folders):
    encoder = ENCODERS.get("hf")(path=str(folders["ast"]))  # 0.64 s windows: 10340 samples end in 100
    feats, frames = encoder(*pad_waveforms([0.1 * torch.randn(10340)]))
    assert int(frames[0]) == 6 and feats.shape == (1, 6, 16)


@pytest.mark.parametrize("kind", FAMILIES)
def test_a_batch_gives_each_clip_its_features_alone_and_the_length_rule_counts_them(kind, folders):
    encoder = ENCODERS.get("hf")(path=str(folders[kind]))
    waves, lengths = pad_waveforms(clips())
    feats, frames = encoder(waves, lengths)
    assert feats.shape == (4, int(frames.max()), encoder.dim) and feats.dtype == torch.float32
    rule = ENCODERS.get("hf").length_rule(str(folders[kind]), None)  # config files only, no weights
    assert frames.tolist() == rule(lengths).tolist() == encoder.output_lengths(lengths).tolist()
    assert frames[0] > 0 and frames[2] > frames[0] > frames[1]
    for i, clip in enumerate(clips()):
        alone, n = encoder(*pad_waveforms([clip]))
        assert int(n[0]) == int(frames[i])
        torch.testing.assert_close(feats[i, : frames[i]], alone[0, : n[0]], atol=1e-4, rtol=1e-4)
    # AST: 5 time patches per 64-frame (0.64 s) window at this size; 101 per 10.24 s for the released ones.
    expected_rate = {
        "ast": 5 / 0.64,
        "clap": 8.0,
        "clap_full": 8.0,
        "clap_fused": 8.0,
        "qwen2_audio_encoder": 25.0,
        "qwen2_audio_full": 25.0,
    }.get(kind, 50.0)
    assert encoder.frame_rate == pytest.approx(expected_rate, rel=0.02)


def test_the_layer_option_picks_a_hidden_state_or_their_mean(folders):
    import transformers as tf

    folder = folders["wav2vec2_layernorm"]
    clip = clips()[0]
    inputs = tf.AutoFeatureExtractor.from_pretrained(folder)(
        clip.numpy(), sampling_rate=16000, return_tensors="pt"
    )
    with torch.no_grad():
        out = tf.AutoModel.from_pretrained(folder)(inputs["input_values"], output_hidden_states=True)
    hf = ENCODERS.get("hf")
    for layer, expected in [
        ("last", out.last_hidden_state),
        (1, out.hidden_states[1]),
        (-1, out.hidden_states[-1]),
        ("all", torch.stack(out.hidden_states).mean(0)),
    ]:
        feats, n = hf(path=str(folder), layer=layer)(*pad_waveforms([clip]))
        torch.testing.assert_close(feats[0, : n[0]], expected[0], atol=1e-5, rtol=1e-5)
    for bad in (3, "mean", 1.5):
        with pytest.raises(ValueError, match="layer="):
            hf(path=str(folder), layer=bad)
    with pytest.raises(ValueError, match="CLAP's stages differ in width"):
        hf(path=str(folders["clap"]), layer="all")
    assert hf(path=str(folders["clap"]), layer=0).dim == 8  # the patch embedding, narrower than last (32)


def test_specs_and_configs_name_it(folders):
    spec = parse_spec(f"l1=hf:{folders['hubert']}?layer=1")
    assert (spec.label, spec.config.name, spec.config.path, spec.config.options) == (
        "l1",
        "hf",
        str(folders["hubert"]),
        {"layer": 1},
    )
    assert parse_spec(f"hf:{folders['ast']}?layer=all").config.options == {"layer": "all"}
    with pytest.raises(ValueError, match=r"no option\(s\) layers"):
        parse_spec(f"hf:{folders['ast']}?layers=2")
    with pytest.raises(ValueError, match="not supported"):
        ENCODERS.get("hf")(random_config={"model_type": "bert"})


def test_encoder_bench_puts_an_hf_spec_into_the_recipe(folders):
    from lalm.config import load_config
    from lalm.eval.encoder_bench import encoder_overrides
    from lalm.train.config import AlignConfig

    spec = parse_spec(f"hf:{folders['wavlm']}?layer=-2")
    cfg = load_config(ROOT / "configs" / "tiny_align.yaml", encoder_overrides(spec), cls=AlignConfig)
    encoder = cfg.model.branches[0].encoder
    assert (encoder.name, encoder.path, encoder.random_config, encoder.options) == (
        "hf",
        str(folders["wavlm"]),
        None,
        {"layer": -2},
    )


def test_probe_runs_the_synthetic_tasks_with_hf_encoders(folders, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "eval" / "probe.py"),
            "--encoder",
            f"hf:{folders['wav2vec2_layernorm']}",
            "--encoder",
            f"l1=hf:{folders['ast']}?layer=1",
            "--tasks",
            "sound_type",
            "--size",
            "27",
            "--out",
            str(tmp_path),
            "--probes",
            "linear,knn",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert set(results) == {f"hf:{folders['wav2vec2_layernorm']}", "l1"}
    assert results["l1"]["sound_type"]["dim"] == 16 and "linear" in results["l1"]["sound_type"]["probes"]


def test_align_trains_a_tiny_lalm_on_an_hf_encoder(folders, sift, tmp_path):
    where = "model.branches.0.encoder"
    log = align(
        f"data.train.0.path={sift}",
        f"train.out_dir={tmp_path}",
        "train.steps=3",
        "train.eval_every=0",
        "train.save_every=3",
        f"{where}.name=hf",
        f"{where}.path={folders['hubert']}",
        f"{where}.random_config=null",
        f"{where}.options={{layer: all}}",
    )
    assert "trainable" in log
    from lalm import LALM

    model = LALM.from_pretrained(tmp_path / "final")
    assert model.branches["audio"].encoder.identity.endswith(":layerall")
