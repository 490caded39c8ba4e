"""Every shipped recipe, shrunk to tiny random parts, trains a few steps and answers audio through the
real HTTP server: a recipe whose checkpoint cannot be served is a bug, whatever it scores."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from lalm.encoders import weightless
from tests.helpers import ROOT, write_tiny_whisper

RECIPES = sorted(p.name for p in (ROOT / "configs").glob("*.yaml") if not p.name.startswith("tiny"))
TINY_ENCODERS = {
    "whisper": {"d_model": 24, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 32,
                "num_mel_bins": 80, "max_source_positions": 1500},
    "zipformer": {"downsampling_factor": [1, 2], "num_encoder_layers": [1, 1], "encoder_dim": [24, 48],
                  "feedforward_dim": [48, 96], "num_heads": [2, 2], "query_head_dim": [8], "value_head_dim": [8],
                  "pos_head_dim": [4], "pos_dim": 16, "encoder_unmasked_dim": [24, 24], "cnn_module_kernel": [7, 5]},
}
TINY_LLM = {"model_type": "qwen2", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
            "initializer_range": 0.2}
#: Projector options that size layers for a 7B LLM; the tiny version leaves them at their defaults.
WIDE_OPTIONS = ("hidden",)


def shrink(recipe: dict, sift: Path, whisper: Path, out: Path) -> dict:
    """The recipe with tiny random encoders (weightless ones as they are) and LLM, the tiny Whisper as
    frozen recognizer (a trained one at its default width, decoding from the LLM's vocabulary: no host
    WordNet), the test corpus, 2 steps."""
    tiny = copy.deepcopy(recipe)
    model = tiny["model"]
    for i, branch in enumerate(model["branches"]):
        encoder = branch["encoder"]
        if encoder["name"] not in weightless():  # an encoder with no weights is tiny already
            branch["encoder"] = {"name": encoder["name"], "random_config": TINY_ENCODERS[encoder["name"]], "seed": i,
                                 "options": encoder.get("options", {})}
        if "projector" in branch and branch["projector"] is None:
            continue  # read by the recognizer only
        options = branch.get("projector", {}).get("options", {})
        branch.setdefault("projector", {})["options"] = {k: v for k, v in options.items() if k not in WIDE_OPTIONS}
    model["llm"] = {"random_config": TINY_LLM, "seed": 2}
    recognizer = model.get("recognizer")
    if recognizer and recognizer.get("branch"):  # trained by the recipe
        recognizer["head"] = {k: v for k, v in recognizer.get("head", {}).items() if k not in WIDE_OPTIONS}
        recognizer["options"] = {**recognizer.get("options", {}), "wordnet": None}
    elif recognizer:
        recognizer["path"] = str(whisper)
    data = tiny.setdefault("data", {})
    data["train"] = [{**source, "path": str(sift)} for source in data.get("train", [{}])]
    data.update(valid=[], valid_fraction=0, batch_seconds=8, max_audio_seconds=4, max_batch_size=4, feature_cache=None)
    train = tiny.setdefault("train", {})
    train.update(out_dir=str(out), steps=2, eval_every=0, save_every=2, init_from=None, precision="fp32",
                 fsdp=False, gradient_checkpointing=False, logger="none", distill_text_field="text")
    if train.get("objective") == "label":
        train["label_fields"] = ["pitch"]  # the test corpus's metadata
    for stage in tiny.get("stages") or []:
        stage.setdefault("train", {})["steps"] = 2
        stage["train"]["eval_every"] = 0
    return tiny


@pytest.fixture(scope="module")
def whisper(tmp_path_factory):
    return write_tiny_whisper(tmp_path_factory.mktemp("recognizer"))


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_trains_and_serves_audio(recipe, sift, whisper, tmp_path):
    from lalm import LALM
    from lalm.serve import App, Server
    from lalm.serve_api import Limits
    from lalm.serve_batch import BatchWorker, HFBackend
    from lalm.train.align import main as align
    from tests.test_serve import audio_part, post, user, wav_base64

    if "phoneme_ctc" in (ROOT / "configs" / recipe).read_text():
        from lalm.phonemes import Phonemizer, PhonemizerError

        try:
            Phonemizer()
        except PhonemizerError:
            pytest.skip("espeak-ng's library is not installed")
    config = tmp_path / recipe
    config.write_text(yaml.safe_dump(shrink(yaml.safe_load((ROOT / "configs" / recipe).read_text()), sift, whisper,
                                            tmp_path / "run")))
    final = align(["--config", str(config)])
    model = LALM.from_pretrained(final).eval()
    server = Server(("127.0.0.1", 0), App(BatchWorker(HFBackend(model)).start(), recipe, Limits())).start()
    try:
        status, body = post(server, {"messages": user(audio_part(wav_base64(1.2)), "What is said?"),
                                     "max_tokens": 3}, key=None)
        assert status == 200, json.dumps(body)
        assert body["usage"]["prompt_tokens"] > 0 and body["choices"][0]["message"]["content"] is not None
    finally:
        server.stop()
