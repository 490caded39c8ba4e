"""The prosody encoder: pitch read off known harmonic tones, silence unvoiced, clips independent of
their batch, level-invariant, bad options named."""

import math

import numpy as np
import pytest
import torch

from lalm.encoders import ENCODERS

SR = 16_000


def voice(f0: float, seconds: float = 1.0, level: float = 0.3) -> np.ndarray:
    """A buzzy vowel-like tone: the first eight harmonics of f0, falling off as 1/k."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * math.pi * k * f0 * t) / k for k in range(1, 9))
    return (level * x / np.abs(x).max()).astype(np.float32)


def encode(enc, clips):
    lengths = torch.tensor([len(c) for c in clips])
    batch = torch.zeros(len(clips), int(lengths.max()))
    for i, c in enumerate(clips):
        batch[i, :len(c)] = torch.from_numpy(c)
    return enc(batch, lengths)


def pitch_of(enc, feats, n):
    """The clip's voicing-weighted mean pitch in Hz, from its pitch-bin memberships."""
    hist = feats[:n, :enc.bins].sum(0)
    return float(2 ** ((hist * enc.centres).sum() / hist.sum()))


@pytest.mark.parametrize("f0", [85.0, 120.0, 210.0, 320.0])
def test_reads_the_pitch_of_a_harmonic_tone(f0):
    enc = ENCODERS.get("prosody")()
    feats, counts = encode(enc, [voice(f0)])
    n = int(counts[0])
    assert n == SR // 160 and feats.shape == (1, n, enc.bins + 3)
    assert abs(math.log2(pitch_of(enc, feats[0], n) / f0)) < 0.05  # within a semitone
    assert float(feats[0, :n - 4, enc.bins].min()) > 0.9  # voiced throughout (the last frames run past the end)
    # The octave channel: the pitch itself, signed about centre_hz, so a linear map extrapolates past the bins.
    assert float(feats[0, :n - 4, enc.bins + 2].mean()) == pytest.approx(math.log2(f0 / 160.0), abs=0.05)


def test_a_voice_above_the_top_bin_fills_it_and_the_octave_channel_carries_the_rest():
    """Bins stop at top_bin_hz, so a voice higher than every training voice lands where the highest of
    them did, not in bins the projector never saw filled; its pitch goes on rising in the octave channel."""
    enc = ENCODERS.get("prosody")(top_bin_hz=300.0)
    assert enc.identity != ENCODERS.get("prosody")().identity  # cached frames are not reused
    feats, counts = encode(enc, [voice(350.0), voice(290.0)])
    n = int(counts[0]) - 4
    high, top = feats[0, :n, :enc.bins].mean(0), feats[1, :n, :enc.bins].mean(0)
    assert int(high.argmax()) == enc.bins - 1 and float(high[-1]) > float(top[-1])
    octaves = feats[:, :n, enc.bins + 2].mean(1)
    assert octaves.tolist() == pytest.approx([math.log2(350 / 160), math.log2(290 / 160)], abs=0.05)


def test_silence_and_noise_are_unvoiced_and_loudness_is_relative():
    enc = ENCODERS.get("prosody")()
    rng = np.random.default_rng(0)
    tone = voice(150.0, 0.5)
    clip = np.concatenate([tone, np.zeros(SR // 2, np.float32), 0.05 * rng.standard_normal(SR // 2).astype(np.float32)])
    feats, _ = encode(enc, [clip])
    voicing, loudness = feats[0, :, enc.bins], feats[0, :, enc.bins + 1]
    assert float(voicing[:40].min()) > 0.9 and float(voicing[55:95].max()) == 0.0  # silence
    assert float(voicing[110:145].mean()) < 0.2  # white noise has no period
    assert float(loudness[:40].max()) == pytest.approx(0.0, abs=0.05) and float(loudness[60:90].max()) <= -1.0
    # A quieter copy of the same clip gives the same frames: everything is relative to its loudest frame.
    quiet, _ = encode(enc, [clip * 0.05])
    assert torch.allclose(quiet, feats, atol=1e-4)


def test_a_clip_does_not_depend_on_its_batch():
    enc = ENCODERS.get("prosody")()
    short, long = voice(110.0, 0.7), voice(240.0, 1.6)
    alone, n = encode(enc, [short])
    together, counts = encode(enc, [short, long])
    assert int(counts[0]) == int(n[0]) and torch.allclose(together[0, :int(n[0])], alone[0], atol=1e-5)
    assert float(together[0, int(n[0]):].abs().max()) == 0.0  # padding frames are zero


@pytest.mark.parametrize("options, fragment", [({"bins": 1}, "bins must be"), ({"min_hz": 300, "max_hz": 200}, "min_hz < max_hz"),
                                               ({"silence_db": 0}, "silence_db"), ({"centre_hz": 500}, "centre_hz"),
                                               ({"top_bin_hz": 50}, "top_bin_hz"), ({"path": "x"}, "no weights")])
def test_bad_options_are_named(options, fragment):
    with pytest.raises(ValueError, match=fragment):
        ENCODERS.get("prosody")(**options)
