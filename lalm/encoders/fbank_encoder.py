"""Log-mel filterbank frames as an "encoder" with no network: the floor a learned encoder must beat.

Probing papers compare against plain spectral features so that a probe's score can be credited to
what the encoder learned rather than to what the spectrum already shows. This is that baseline in
the registry (`--encoder fbank`, or `encoder: {name: fbank}` in a config): Kaldi-compatible log-mel
frames (`lalm.encoders.fbank`, the Zipformers' input) at 100 Hz, width `num_mel_bins`.
"""

from __future__ import annotations

import torch

from lalm.encoders import ENCODERS
from lalm.encoders.base import AudioEncoder
from lalm.encoders.fbank import FRAME_SHIFT, SAMPLE_RATE, kaldi_fbank_batch, num_frames


@ENCODERS.register("fbank")
class FbankEncoder(AudioEncoder):
    """Kaldi log-mel filterbank frames, 100 per second; nothing is learned or loaded.

    Args:
        path, random_config, seed: must stay unset (there are no weights); accepted so that every
            encoder class is built the same way.
        num_mel_bins: mel bands per frame, the feature width (80 as in Kaldi/Auden).
    """

    has_weights = False
    frame_rate = SAMPLE_RATE / FRAME_SHIFT

    def __init__(self, path: str | None = None, random_config: dict | None = None, seed: int = 0,
                 num_mel_bins: int = 80):
        super().__init__()
        if path is not None or random_config is not None:
            raise ValueError("fbank has no weights: leave `path` and `random_config` unset")
        if not 8 <= num_mel_bins <= 256:
            raise ValueError(f"num_mel_bins must be between 8 and 256, got {num_mel_bins!r}")
        self.dim = int(num_mel_bins)

    @property
    def identity(self) -> str:
        return f"fbank:{self.dim}"

    @staticmethod
    def count(num_samples: torch.Tensor, **length_params: int) -> torch.Tensor:
        return num_frames(num_samples)

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return kaldi_fbank_batch(waveforms, lengths, self.dim)
