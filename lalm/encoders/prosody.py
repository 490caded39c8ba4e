"""Pitch and loudness frames with no network: what a voice's sound says that an ASR encoder drops.

Whisper's encoder is trained to write words, which sound the same at any pitch, and it keeps little
of the voice's fundamental frequency: linear heads read speaker gender off Whisper tiny.en's pooled
frames at 80-85 % on unseen voices, while the clip's median F0 alone separates them at 98 % on the
demo's training voices (docs/quality.md, "Pitch (rows N-T)"). This encoder is that
cue as frames, for a paralinguistic branch beside the semantic one (AZeroS's `<meta>`):

- F0 by autocorrelation of 40 ms windows every 10 ms, the lag searched between `max_hz` and
  `min_hz`; the normalised correlation at that lag is the frame's periodicity (voicing, 0 to 1);
- the frame's F0 as a soft one-hot over `bins` log-spaced pitch bins from `min_hz` to `top_bin_hz`
  (Gaussian membership, one bin wide; a higher pitch falls in the top bin), weighted by voicing: the
  mean over a clip is the clip's pitch histogram, which a pooling projector reads directly (no
  division by the voiced fraction to learn);
- voicing and log energy relative to the clip's loudest frame (so a clip's level does not matter);
- the frame's F0 in octaves from `centre_hz`, weighted by voicing: a pitch value a linear map carries
  past the voices it was trained on, where the histogram cannot (a voice higher than any trained one
  lands in bins whose weights never trained: docs/quality.md rows AE-AK). 160 Hz sits between typical
  adult male (~120 Hz) and female (~210 Hz) speech, so the clip mean's sign already tells them apart.

Frames quieter than `silence_db` below the loudest one are unvoiced. Nothing is learned or loaded.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lalm.adapters.base import valid_mask
from lalm.encoders import ENCODERS
from lalm.encoders.base import SAMPLE_RATE, AudioEncoder

HOP = 160  # 10 ms
WINDOW = 640  # 40 ms: two periods of a 50 Hz voice
VOICED = 0.5  # normalised correlation (of 1) above which a frame counts as periodic
VERSION = 3  # in the identity: a change to what the frames hold must not reuse cached features


@ENCODERS.register("prosody")
class ProsodyEncoder(AudioEncoder):
    """Per-frame pitch histogram membership, voicing, relative log energy and pitch in octaves, 100
    frames per second.

    Args:
        path, random_config, seed: must stay unset (there are no weights); accepted so that every
            encoder class is built the same way.
        bins: log-spaced pitch bins between min_hz and top_bin_hz (feature width bins + 3).
        min_hz, max_hz: the F0 search range (60-400 Hz covers adult speech).
        centre_hz: the pitch the octave channel counts from (0 there).
        top_bin_hz: the highest bin's centre (default max_hz): a pitch above it falls in the top bin.
        silence_db: frames this far below the clip's loudest frame count as silence.
    """

    has_weights = False
    frame_rate = SAMPLE_RATE / HOP

    def __init__(self, path: str | None = None, random_config: dict | None = None, seed: int = 0,
                 bins: int = 24, min_hz: float = 60.0, max_hz: float = 400.0, silence_db: float = 35.0,
                 centre_hz: float = 160.0, top_bin_hz: float | None = None):
        super().__init__()
        if path is not None or random_config is not None:
            raise ValueError("prosody has no weights: leave `path` and `random_config` unset")
        if not 2 <= bins <= 256:
            raise ValueError(f"bins must be between 2 and 256, got {bins!r}")
        if not SAMPLE_RATE / WINDOW * 2 <= min_hz < max_hz <= SAMPLE_RATE / 8:
            raise ValueError(f"need {SAMPLE_RATE / WINDOW * 2:.0f} <= min_hz < max_hz <= {SAMPLE_RATE // 8}, "
                             f"got {min_hz}, {max_hz}")
        if not min_hz <= centre_hz <= max_hz:
            raise ValueError(f"centre_hz must lie between min_hz and max_hz, got {centre_hz!r}")
        top_bin_hz = max_hz if top_bin_hz is None else top_bin_hz
        if not min_hz < top_bin_hz <= max_hz:
            raise ValueError(f"top_bin_hz must lie above min_hz and at most max_hz, got {top_bin_hz!r}")
        if silence_db <= 0:
            raise ValueError(f"silence_db must be positive, got {silence_db!r}")
        self.bins, self.min_hz, self.max_hz, self.silence_db = int(bins), float(min_hz), float(max_hz), float(silence_db)
        self.centre_hz, self.top_bin_hz = float(centre_hz), float(top_bin_hz)
        self.dim = self.bins + 3
        self.lags = int(SAMPLE_RATE // max_hz), math.ceil(SAMPLE_RATE / min_hz)  # the F0 range as lags in samples
        # Bin centres in log2 Hz, evenly spaced from min_hz to top_bin_hz.
        self.register_buffer("centres", torch.linspace(math.log2(min_hz), math.log2(top_bin_hz), self.bins),
                             persistent=False)

    @property
    def identity(self) -> str:
        return (f"prosody-v{VERSION}:{self.bins}:{self.min_hz:g}-{self.max_hz:g}:{self.silence_db:g}"
                f":{self.centre_hz:g}:{self.top_bin_hz:g}")

    @staticmethod
    def count(num_samples: torch.Tensor, **length_params: int) -> torch.Tensor:
        return torch.as_tensor(num_samples) // HOP

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = waveforms.float()
        # Zero every clip past its end, then frame: frame t covers samples [t HOP, t HOP + WINDOW).
        x = x * valid_mask(lengths.to(x.device), x.shape[1])
        counts = self.output_lengths(lengths).to(x.device)
        frames_n = max(int(counts.max()) if counts.numel() else 0, 1)
        x = F.pad(x, (0, max(frames_n * HOP + WINDOW - x.shape[1], 0)))
        frames = x.unfold(1, WINDOW, HOP)[:, :frames_n]
        frames = frames - frames.mean(-1, keepdim=True)
        energy = frames.pow(2).mean(-1)
        spectrum = torch.fft.rfft(frames, n=2 * WINDOW)
        acf = torch.fft.irfft(spectrum.real.pow(2) + spectrum.imag.pow(2), n=2 * WINDOW)[..., :WINDOW]
        lo, hi = self.lags
        # The lag is the biased autocorrelation's peak, which favours short lags and so the true period
        # over its multiples; the periodicity is the correlation of the window's two overlapping parts
        # at that lag, normalised by their energies, which unlike the biased peak does not fall with F0.
        lag = acf[..., lo:hi + 1].argmax(-1) + lo
        power = F.pad(frames.pow(2).cumsum(-1), (1, 0))  # power[..., n]: energy of the first n samples
        head = power.gather(-1, (WINDOW - lag)[..., None])[..., 0]  # samples [0, WINDOW - lag)
        tail = power[..., -1] - power.gather(-1, lag[..., None])[..., 0]  # samples [lag, WINDOW)
        peak = acf.gather(-1, lag[..., None])[..., 0] / (head * tail).clamp(min=1e-20).sqrt()
        f0 = math.log2(SAMPLE_RATE) - torch.log2(lag.float())

        valid = valid_mask(counts, frames_n)
        log_energy = torch.log10(energy.clamp(min=1e-10)) * 10
        loudest = log_energy.masked_fill(~valid, -math.inf).amax(1, keepdim=True).clamp(min=-100)
        relative = (log_energy - loudest).clamp(min=-self.silence_db - 10)
        voicing = torch.where((relative > -self.silence_db) & (peak > VOICED), peak, torch.zeros_like(peak))
        width = self.centres[1] - self.centres[0]  # bins >= 2
        member = torch.exp(-0.5 * ((f0[..., None] - self.centres) / width) ** 2)
        member = member / member.sum(-1, keepdim=True).clamp(min=1e-12) * voicing[..., None]
        octaves = (f0 - math.log2(self.centre_hz)) * voicing
        feats = torch.cat([member, voicing[..., None], relative[..., None] / self.silence_db, octaves[..., None]], dim=-1)
        return feats * valid[..., None], counts
