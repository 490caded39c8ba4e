"""Any transformers audio encoder, through its own feature extractor: `hf:ID_OR_DIR?layer=...`.

Baselines a new encoder is compared with (wav2vec2, HuBERT, WavLM, data2vec-audio, AST, CLAP's audio
tower, Whisper's encoder, Qwen2-Audio's audio tower) load from a hub id or a `save_pretrained` folder
holding the model and its feature extractor. What differs per family is handled here:

- conv front ends on raw samples (wav2vec2, HuBERT, WavLM, data2vec-audio, ...): the extractor
  normalises each clip over its own samples; models whose padding reaches valid frames despite the
  attention mask (GroupNorm over time in the `feat_extract_norm: group` base models, data2vec-audio's
  stacked positional convs) run clip by clip, so a clip's features never depend on its batch; the
  others run as one batch with an attention mask.
  Frames: the conv stack's formula on the clip's length (50 Hz for the usual strides).
- fixed windows (Whisper 30 s, Qwen2-Audio 30 s, AST `max_length` frames, CLAP `max_length_s`): each
  clip is cut into windows, every window is padded by the extractor as the model was trained (so a
  clip's features never depend on its batch), and the valid frames of each window are joined.
  AST's patch grid and CLAP's Swin maps are averaged over frequency into a time sequence; CLAP's
  extractor works at 48 kHz, so windows are resampled (soxr) first;
  fusion models see every window as not longer than their length (it never is).

`layer` picks the features: `last` (the model's `last_hidden_state`, final norm included), an index
into `hidden_states` (0 = the input of the first layer, negatives count from the end), or `all`, the
uniform mean of every entry of `hidden_states`. SUPERB learns softmax weights over the layers instead;
here the encoder is frozen, its features are cached, and only projector weights are saved, so a learned
layer weight has no place to live: `all` is that weighted sum at its uniform starting point. Every layer
is brought to the frame rate of `last` (Qwen2-Audio pools by 2, CLAP's stages are pooled over time), so
the length rule does not depend on the layer.
"""

from __future__ import annotations

import functools
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lalm.encoders import ENCODERS
from lalm.encoders.base import SAMPLE_RATE, AudioEncoder, weights_name
from lalm.encoders.whisper import conv_frames, mel_frames
from lalm.paths import resolve_path

HOP = 160  # 10 ms at 16 kHz: the mel/fbank hop of every windowed family here
#: Conv front ends on raw samples: the feature extractor normalises, the conv stack sets the frame rate.
CONV_TYPES = (
    "wav2vec2",
    "hubert",
    "wavlm",
    "data2vec-audio",
    "wav2vec2-conformer",
    "unispeech",
    "unispeech-sat",
    "sew",
    "sew-d",
)
WINDOW_TYPES = (
    "whisper",
    "qwen2_audio",
    "qwen2_audio_encoder",
    "audio-spectrogram-transformer",
    "clap",
    "clap_audio_model",
)
#: Composite models whose audio tower is one attribute (the rest is loaded and dropped).
TOWER_ATTRIBUTE = {"whisper": "encoder", "clap": "audio_model", "qwen2_audio": "audio_tower"}
WINDOWS_PER_BATCH = 16  # windows encoded together: bounds memory for long clips
MIN_WINDOW = 400  # samples: one 25 ms analysis frame, the least an extractor can turn into features


def family_of(model_type: str) -> str:
    """conv | whisper | qwen2_audio | ast | clap, or a ValueError naming what is supported."""
    if model_type in CONV_TYPES:
        return "conv"
    families = {
        "whisper": "whisper",
        "qwen2_audio": "qwen2_audio",
        "qwen2_audio_encoder": "qwen2_audio",
        "audio-spectrogram-transformer": "ast",
        "clap": "clap",
        "clap_audio_model": "clap",
    }
    if model_type not in families:
        raise ValueError(
            f"hf encoder: model_type {model_type!r} is not supported; supported: "
            f"{', '.join(CONV_TYPES + WINDOW_TYPES)} (or write an encoder class, docs/encoders.md)"
        )
    return families[model_type]


def audio_config(config):
    """The audio tower's own config inside a composite config (Qwen2-Audio, CLAP), else the config."""
    return getattr(config, "audio_config", None) or config


def read_config(path: str | None, random_config: dict | None):
    """The transformers config from config.json alone (no weights): the length rule's only input."""
    from transformers import AutoConfig

    if random_config is not None:
        fields = dict(random_config)
        return AutoConfig.for_model(fields.pop("model_type", "wav2vec2"), **fields)
    return AutoConfig.from_pretrained(resolve_path(path))


def read_extractor_fields(path: str | None) -> dict:
    """preprocessor_config.json (small, no weights): CLAP's window length lives only there."""
    if path is None:
        return {}
    local = resolve_path(path)
    if os.path.isdir(local):
        file = os.path.join(local, "preprocessor_config.json")
        return json.loads(open(file).read()) if os.path.isfile(file) else {}
    from huggingface_hub import hf_hub_download

    return json.loads(open(hf_hub_download(local, "preprocessor_config.json")).read())


def layout(config, extractor_fields: dict) -> dict:
    """What the length rule needs, from the configs: the family and its window or conv stack."""
    family = family_of(config.model_type)
    cfg = audio_config(config)
    if family == "conv":
        return {"family": family, "kernels": list(cfg.conv_kernel), "strides": list(cfg.conv_stride)}
    if family in ("whisper", "qwen2_audio"):
        return {"family": family, "window": cfg.max_source_positions * 2 * HOP}
    if family == "ast":
        patch = cfg.patch_size if isinstance(cfg.patch_size, int) else cfg.patch_size[-1]
        return {
            "family": family,
            "window": cfg.max_length * HOP,
            "stride": cfg.time_stride * HOP,
            "frames": (cfg.max_length - patch) // cfg.time_stride + 1,
        }
    stride = cfg.patch_stride if isinstance(cfg.patch_stride, int) else cfg.patch_stride[-1]
    ratio = cfg.spec_size // cfg.num_mel_bins
    seconds = extractor_fields.get("max_length_s", 10)
    return {
        "family": family,
        "window": int(seconds * SAMPLE_RATE),
        "frames": ratio * (cfg.spec_size // 2 ** (len(cfg.depths) - 1) // stride),
    }


def window_frames(n: torch.Tensor, family: str, window: int, stride: int, frames: int) -> torch.Tensor:
    """Valid output frames of windows holding n real samples (n <= window)."""
    if family == "whisper":
        return torch.where(n > 0, conv_frames(mel_frames(n)), 0)
    if family == "qwen2_audio":  # as Qwen2-Audio counts: mel frames from the extractor's mask, conv, pool
        return torch.clamp((qwen2_audio_conv_frames(n) - 2) // 2 + 1, min=0)
    if family == "ast":  # time patches that start inside the clip
        return torch.clamp(-(-n // stride), max=frames)
    return torch.clamp(-(-(n * frames) // window), max=frames)  # clap: the share of the window's frames


def qwen2_audio_conv_frames(n: torch.Tensor) -> torch.Tensor:
    """Conv outputs Qwen2-Audio attends over: its extractor's mask marks ceil(n / hop) mel frames."""
    mel = -(-n // HOP)
    return torch.where(mel > 0, (mel - 1) // 2 + 1, 0)


@ENCODERS.register("hf")
class HFEncoder(AudioEncoder):
    """A frozen transformers audio model through its own feature extractor (see the module docstring).

    Args:
        path: hub id or folder with the model's config.json, weights and preprocessor_config.json.
        random_config: transformers config fields with `model_type` (random weights, the family's
            default feature extractor), instead of `path`.
        seed: seed of the random initialisation.
        layer: `last` (the default, also when unset), an index into the model's hidden states, or
            `all` (their mean).
    """

    frame_rate = 50.0  # replaced per instance from the config

    def __init__(
        self,
        path: str | None = None,
        random_config: dict | None = None,
        seed: int = 0,
        layer: int | str | None = None,
    ):
        super().__init__()
        config = read_config(path, random_config)
        self.params = layout(config, read_extractor_fields(path))
        self.family = self.params["family"]
        self.model = load_tower(path, config, seed)
        self.extractor = load_extractor(path, config)
        # None, not "last", is the default: option checks infer an option's type from its default.
        self.layer = check_layer("last" if layer is None else layer, self.family, self.num_hidden_states())
        self.dim = self.layer_dims()[self.layer if isinstance(self.layer, int) else -1]
        self.frame_rate = float(self.count(torch.tensor(SAMPLE_RATE * 600), **self.params)) / 600
        self.clip_by_clip = self.family == "conv" and padding_leaks(config)
        self.identity = f"hf:{weights_name(path, random_config, seed)}:layer{self.layer}"
        self.eval().requires_grad_(False)

    # ------------------------------------------------------------------------------- lengths

    @staticmethod
    def count(
        num_samples: torch.Tensor,
        family: str = "conv",
        kernels: tuple = (),
        strides: tuple = (),
        window: int = 0,
        stride: int = 0,
        frames: int = 0,
    ) -> torch.Tensor:
        n = torch.as_tensor(num_samples)
        if family == "conv":
            for k, s in zip(kernels, strides):
                n = torch.clamp(torch.div(n - k, s, rounding_mode="floor") + 1, min=0)
            return n
        full, rest = n // window, n % window
        per_window = functools.partial(
            window_frames, family=family, window=window, stride=stride, frames=frames
        )
        return full * per_window(torch.as_tensor(window)) + torch.where(rest > 0, per_window(rest), 0)

    @classmethod
    def length_params(cls, path: str | None, random_config: dict | None) -> dict:
        return layout(read_config(path, random_config), read_extractor_fields(path))

    def own_length_params(self) -> dict:
        return dict(self.params)

    # ------------------------------------------------------------------------------- layers

    def num_hidden_states(self) -> int:
        cfg = audio_config(self.model.config)
        if self.family == "clap":
            return len(cfg.depths) + 1
        return (getattr(cfg, "num_hidden_layers", None) or cfg.encoder_layers) + 1

    def layer_dims(self) -> list[int]:
        """Feature width of each hidden state, the last entry being `last_hidden_state`'s."""
        cfg = audio_config(self.model.config)
        if self.family == "clap":  # Swin stages double the width at each downsampling
            e, stages = cfg.patch_embeds_hidden_size, len(cfg.depths)
            return [e] + [e * 2 ** min(i + 1, stages - 1) for i in range(stages)] + [e * 2 ** (stages - 1)]
        width = getattr(cfg, "hidden_size", None) or cfg.d_model
        return [width] * (self.num_hidden_states() + 1)

    # ------------------------------------------------------------------------------- forward

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        clips = [waveforms[i, : int(n)].float().cpu().numpy() for i, n in enumerate(lengths.tolist())]
        if self.family == "conv":
            outputs = self.encode_clips(clips)
        else:
            outputs = self.encode_windows(clips)
        device = waveforms.device
        out_lengths = torch.tensor([o.shape[0] for o in outputs], device=device)
        padded = nn.utils.rnn.pad_sequence([o.to(device) for o in outputs], batch_first=True)
        return padded, out_lengths

    def encode_clips(self, clips: list[np.ndarray]) -> list[torch.Tensor]:
        """Conv front ends: one masked batch, or clip by clip for GroupNorm models."""
        counts = self.count(torch.tensor([c.size for c in clips]), **self.params).tolist()
        receptive = (
            sum(
                (k - 1) * int(np.prod(self.params["strides"][:i]))
                for i, k in enumerate(self.params["kernels"])
            )
            + 1
        )
        # A clip too short for one frame gives none; it still needs room to pass the convs.
        ready = [np.pad(c, (0, max(0, receptive - c.size))) for c in clips]
        groups = [[i] for i in range(len(clips))] if self.clip_by_clip else [list(range(len(clips)))]
        outputs: list[torch.Tensor | None] = [None] * len(clips)
        for group in groups:
            inputs = self.extractor(
                [ready[i] for i in group],
                sampling_rate=SAMPLE_RATE,
                padding=True,
                return_attention_mask=True,
                return_tensors="pt",
            )
            mask = None if self.clip_by_clip else inputs["attention_mask"]
            hidden = self.select(self.run(input_values=inputs["input_values"], attention_mask=mask))
            for row, i in enumerate(group):
                outputs[i] = hidden[row, : counts[i]]
        return outputs

    def encode_windows(self, clips: list[np.ndarray]) -> list[torch.Tensor]:
        """Windowed families: every window padded by the extractor alone, valid frames joined per clip."""
        window = self.params["window"]
        pieces = [
            (i, c[start : start + window]) for i, c in enumerate(clips) for start in range(0, c.size, window)
        ]
        per_clip: list[list[torch.Tensor]] = [[] for _ in clips]
        for first in range(0, len(pieces), WINDOWS_PER_BATCH):
            batch = pieces[first : first + WINDOWS_PER_BATCH]
            # A last window under one STFT frame breaks the extractors; its count stays its own.
            hidden = self.window_hidden([np.pad(p, (0, max(0, MIN_WINDOW - p.size))) for _, p in batch])
            valid = self.count(torch.tensor([p.size for _, p in batch]), **self.params).tolist()
            for (clip, _), h, t in zip(batch, hidden, valid):
                per_clip[clip].append(h[:t])
        return [torch.cat(parts) if parts else torch.zeros(0, self.dim) for parts in per_clip]

    def window_hidden(self, pieces: list[np.ndarray]) -> torch.Tensor:
        """[W, T, D] features of whole windows, T the frames of a full window."""
        # Padded to the window the model's positions cover (30 s for the released ones), whatever
        # chunk length the extractor was saved with.
        window = {"padding": "max_length", "max_length": self.params["window"]}
        if self.family == "whisper":  # stock Whisper: 30 s of silence-padded mels, nothing masked
            inputs = self.extractor(pieces, sampling_rate=SAMPLE_RATE, return_tensors="pt", **window)
            return self.select(self.run(input_features=inputs["input_features"]))
        if self.family == "qwen2_audio":  # stock Qwen2-Audio masks the padded conv frames' keys
            inputs = self.extractor(pieces, sampling_rate=SAMPLE_RATE, return_tensors="pt", **window)
            steps = inputs["input_features"].shape[-1] // 2
            valid = qwen2_audio_conv_frames(torch.tensor([p.size for p in pieces]))
            keep = torch.arange(steps)[None, :] < valid[:, None]
            mask = torch.zeros(keep.shape).masked_fill(~keep, torch.finfo(torch.float32).min)[
                :, None, None, :
            ]
            return self.select(self.run(input_features=inputs["input_features"], attention_mask=mask))
        if self.family == "ast":
            inputs = self.extractor(pieces, sampling_rate=SAMPLE_RATE, return_tensors="pt")
            return self.select(self.run(input_values=inputs["input_values"]))
        rate = self.extractor.sampling_rate
        if rate != SAMPLE_RATE:
            import soxr

            pieces = [soxr.resample(p, SAMPLE_RATE, rate, quality="VHQ").astype(np.float32) for p in pieces]
        fusion = bool(getattr(self.model.config, "enable_fusion", False))
        inputs = self.extractor(
            pieces, sampling_rate=rate, return_tensors="pt", truncation="fusion" if fusion else "rand_trunc"
        )
        # No window is longer than the model's length; the extractor's fusion mode marks a random one
        # longer anyway when none is, which would make a clip's features depend on its batch.
        is_longer = torch.zeros_like(inputs["is_longer"])
        return self.select(self.run(input_features=inputs["input_features"], is_longer=is_longer))

    def run(self, **inputs):
        device = next(self.model.parameters()).device
        dtype = next(self.model.parameters()).dtype
        ready = {
            k: (v.to(device, dtype) if v.is_floating_point() else v.to(device))
            for k, v in inputs.items()
            if v is not None
        }
        with torch.no_grad():
            return self.model(**ready, output_hidden_states=self.layer != "last")

    def select(self, out) -> torch.Tensor:
        """The chosen layer as a time sequence [B, T, D] at the frame rate of `last`."""
        last = self.as_sequence(out.last_hidden_state, None)
        if self.layer == "last":
            return last
        states = [self.as_sequence(h, last.shape[1]) for h in out.hidden_states]
        if self.layer == "all":
            return torch.stack(states).mean(0)
        return states[self.layer]

    def as_sequence(self, h: torch.Tensor, frames: int | None) -> torch.Tensor:
        """A family's hidden state as [B, T, D]; `frames` pools it in time to match `last`."""
        if self.family == "ast":  # [CLS], [DIST], then a (frequency x time) patch grid
            cfg = self.model.config
            patch = cfg.patch_size if isinstance(cfg.patch_size, int) else cfg.patch_size[0]
            freq = (cfg.num_mel_bins - patch) // cfg.frequency_stride + 1
            h = h[:, 2:].reshape(h.shape[0], freq, -1, h.shape[-1]).mean(1)
        elif self.family == "clap" and frames is None:  # last: [B, C, freq, time], time already unfolded
            h = h.mean(2).transpose(1, 2)
        elif (
            self.family == "clap"
        ):  # a stage: [B, C, ratio x freq, time]: unfold the time chunks, average freq
            cfg = audio_config(self.model.config)
            ratio = cfg.spec_size // cfg.num_mel_bins
            b, c, height, width = h.shape
            h = (
                h.reshape(b, c, ratio, height // ratio, width)
                .mean(3)
                .reshape(b, c, ratio * width)
                .transpose(1, 2)
            )
        if frames is not None and h.shape[1] != frames:
            h = F.adaptive_avg_pool1d(h.transpose(1, 2), frames).transpose(1, 2)
        return h


def padding_leaks(config) -> bool:
    """Whether a conv-front-end model's valid frames see a batch's padding despite the attention mask:
    GroupNorm over time in the first conv layer (`feat_extract_norm: group`, the base models), or
    data2vec-audio's stack of positional convs (the second one reads the first one's padded outputs)."""
    return config.model_type == "data2vec-audio" or getattr(config, "feat_extract_norm", "layer") == "group"


def check_layer(layer: int | str, family: str, states: int) -> int | str:
    """`layer` as given, or a ValueError that names the option and its valid values."""
    if layer in ("last", "all"):
        if layer == "all" and family == "clap":
            raise ValueError(
                "hf encoder option layer=all: CLAP's stages differ in width; pick one layer "
                f"(0..{states - 1}) or last"
            )
        return layer
    if isinstance(layer, bool) or not isinstance(layer, int) or not -states <= layer < states:
        raise ValueError(
            f"hf encoder option layer={layer!r}: use last, all, or an index into the model's "
            f"{states} hidden states (0..{states - 1}, negatives count from the end)"
        )
    return layer % states


def load_tower(path: str | None, config, seed: int) -> nn.Module:
    """The audio model itself: composite models (Whisper, CLAP, Qwen2-Audio) keep only their audio tower."""
    from transformers import AutoModel, ClapAudioModel

    model_type = config.model_type
    if path is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            cls = ClapAudioModel if model_type == "clap_audio_model" else AutoModel
            model = cls.from_config(config) if cls is AutoModel else cls(config)
    elif model_type == "clap_audio_model":  # not in AutoModel's table
        model = ClapAudioModel.from_pretrained(resolve_path(path))
    elif model_type == "qwen2_audio":  # load the audio tower's weights only, not the LLM's
        model = load_prefixed(resolve_path(path), config.audio_config, "audio_tower.")
    else:
        model = AutoModel.from_pretrained(resolve_path(path), dtype=torch.float32)
    tower = TOWER_ATTRIBUTE.get(model_type)
    if tower and hasattr(model, tower):
        model = getattr(model, tower)
    return model.float().eval().requires_grad_(False)


def load_prefixed(folder: str, config, prefix: str) -> nn.Module:
    """A submodule built from `config`, its weights read from the checkpoint's `prefix` keys."""
    from safetensors import safe_open
    from transformers import AutoModel

    if not os.path.isdir(folder):
        from huggingface_hub import snapshot_download

        folder = snapshot_download(folder, allow_patterns=["*.json", "*.safetensors"])
    files = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}: no .safetensors weights to read {prefix}* from")
    module = AutoModel.from_config(config)
    state = {}
    for name in files:
        with safe_open(os.path.join(folder, name), "pt") as f:
            state.update({k[len(prefix) :]: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)})  # noqa: SIM118 (safe_open is not iterable)
    module.load_state_dict(state, strict=True)
    return module


def load_extractor(path: str | None, config):
    """The model's own feature extractor, or the family default for random weights."""
    import transformers as tf

    family, cfg = family_of(config.model_type), audio_config(config)
    if path is not None:
        try:
            extractor = tf.AutoFeatureExtractor.from_pretrained(resolve_path(path))
        except OSError as err:
            raise FileNotFoundError(
                f"hf encoder {path}: no feature extractor (preprocessor_config.json); save it "
                f"beside the model with save_pretrained ({err})"
            ) from err
        if family == "ast":  # the model's position table fixes the frames per window
            extractor.max_length = cfg.max_length
        return extractor
    if family == "conv":
        return tf.Wav2Vec2FeatureExtractor(return_attention_mask=True)
    if family in ("whisper", "qwen2_audio"):
        return tf.WhisperFeatureExtractor(feature_size=cfg.num_mel_bins)
    if family == "ast":
        return tf.ASTFeatureExtractor(num_mel_bins=cfg.num_mel_bins, max_length=cfg.max_length)
    return tf.ClapFeatureExtractor(feature_size=cfg.num_mel_bins)
