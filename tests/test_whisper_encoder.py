"""Real-length Whisper encoding: batching, masking, 30 s windows."""

import numpy as np
import pytest
import torch

from lalm.encoders import ENCODERS

CFG = {"d_model": 16, "encoder_layers": 2, "encoder_attention_heads": 2, "encoder_ffn_dim": 32, "num_mel_bins": 80}


def encoder(**options):
    return ENCODERS.get("whisper")(random_config=CFG, seed=0, **options)


def encode(enc, clips):
    lengths = torch.tensor([len(c) for c in clips])
    batch = torch.nn.utils.rnn.pad_sequence([torch.tensor(c) for c in clips], batch_first=True)
    with torch.no_grad():
        return enc(batch, lengths)


def test_short_clip_matches_between_padded_batch_and_alone():
    rng = np.random.default_rng(0)
    enc = encoder()
    short = rng.standard_normal(16000 + 77).astype(np.float32) * 0.1
    long = rng.standard_normal(16000 * 7).astype(np.float32) * 0.1
    alone, n_alone = encode(enc, [short])
    batched, n_batched = encode(enc, [long, short])
    assert n_alone[0] == n_batched[1] == enc.output_lengths(torch.tensor([len(short)]))[0]
    assert torch.allclose(alone[0, : n_alone[0]], batched[1, : n_batched[1]], atol=1e-5)
    assert batched.shape[1] == n_batched[0]


def test_output_rate_and_lengths():
    enc = encoder()
    assert enc.frame_rate == 50
    seconds = torch.tensor([16000, 16000 * 30, 16000 * 30 + 3200, 16000 * 61])
    assert enc.output_lengths(seconds).tolist() == [50, 1500, 1510, 3050]


def test_long_clip_is_split_into_30s_windows_and_joined():
    rng = np.random.default_rng(1)
    enc = encoder()
    clip = rng.standard_normal(16000 * 35).astype(np.float32) * 0.1
    out, n = encode(enc, [clip])
    first, n1 = encode(enc, [clip[: 16000 * 30]])
    rest, n2 = encode(enc, [clip[16000 * 30:]])
    assert n[0] == n1[0] + n2[0] == 1750
    assert torch.allclose(out[0], torch.cat([first[0], rest[0]]), atol=1e-5)


def test_padded_modes_keep_real_length_outputs_and_batch_independence():
    rng = np.random.default_rng(2)
    clip = rng.standard_normal(16000 * 2).astype(np.float32) * 0.1
    other = rng.standard_normal(16000 * 5).astype(np.float32) * 0.1
    for options in ({"pad_to_seconds": 30}, {"tail_seconds": 1.0}, {"pad_to_seconds": 10, "tail_seconds": 0.5}):
        enc = encoder(**options)
        out, n = encode(enc, [clip])
        assert n[0] == 100 and out.shape[1] == 100, options
        batched, nb = encode(enc, [other, clip])
        assert torch.allclose(out[0], batched[1, : nb[1]], atol=1e-5), options


def test_silence_in_attention_changes_features_and_stock_padding_matches_hugging_face():
    """tail/pad put silence into attention (so features move); pad_to_seconds=30 is stock Whisper itself."""
    from transformers import WhisperFeatureExtractor

    rng = np.random.default_rng(4)
    clip = rng.standard_normal(16000 * 3).astype(np.float32) * 0.1
    real, _ = encode(encoder(), [clip])
    tail, _ = encode(encoder(tail_seconds=2.0), [clip])
    stock, _ = encode(encoder(pad_to_seconds=30), [clip])
    assert not torch.allclose(real, tail, atol=1e-3) and not torch.allclose(tail, stock, atol=1e-3)
    enc = encoder()
    mel = WhisperFeatureExtractor(feature_size=80)(clip, sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        reference = enc.model(mel).last_hidden_state[0, :150]
    assert torch.allclose(stock[0], reference, atol=2e-3)


def test_padding_options_are_checked_and_named_in_the_identity():
    with pytest.raises(ValueError, match="tail_seconds must be between 0 and 30"):
        encoder(tail_seconds=31)
    enc = encoder(tail_seconds=0.5)
    assert "tail0.5" in enc.identity
    with enc.padding(pad_to_seconds=30):
        assert "pad30" in enc.identity
    assert "pad0" in enc.identity


def test_log_mel_matches_transformers_feature_extractor():
    """On a full 30 s window our batched log-mel equals Whisper's reference features."""
    from transformers import WhisperFeatureExtractor

    rng = np.random.default_rng(3)
    clip = (rng.standard_normal(16000 * 30) * 0.1).astype(np.float32)
    reference = WhisperFeatureExtractor(feature_size=80)(clip, sampling_rate=16000, return_tensors="np")["input_features"][0]
    ours, frames = encoder().log_mel([torch.tensor(clip)], torch.tensor([len(clip)]))
    assert frames[0] == 3000
    assert np.abs(ours[0].numpy() - reference).max() < 2e-3
