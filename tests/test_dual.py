"""The AZeroS dual setup on tiny random Zipformers: stage 1 trains the semantic projector, stage 2
loads it frozen and trains the paralinguistic one."""

import numpy as np
import torch
from safetensors.torch import load_file

from lalm import LALM, load_config
from lalm.train.config import AlignConfig
from tests.conftest import ROOT
from tests.helpers import align, training_batch_for

STAGE1 = ROOT / "configs" / "tiny_dual_stage1.yaml"
STAGE2 = ROOT / "configs" / "tiny_dual_stage2.yaml"


def graded_projectors(config_path, overrides=()):
    model = LALM(load_config(config_path, list(overrides), cls=AlignConfig).model).train()
    clip = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    out = model(**training_batch_for(model, [clip], ["fine"]))
    out["loss_sum"].backward()
    graded = {n.split(".")[1] for n, p in model.named_parameters() if p.grad is not None}
    assert all(".projector." in n for n, p in model.named_parameters() if p.grad is not None)
    return graded


def test_each_stage_grads_only_its_projector():
    assert graded_projectors(STAGE1) == {"semantic"}
    assert graded_projectors(STAGE2) == {"paralinguistic"}


def test_dual_layout_places_both_branches():
    model = LALM(load_config(STAGE2, cls=AlignConfig).model)
    enc = model.processor.encode([{"role": "user", "content": [{"type": "audio"}]}], [16000 * 2])
    text = model.tokenizer.decode([i if s == 0 else model.tokenizer.convert_tokens_to_ids("#") for i, s in
                                   zip(enc.input_ids, enc.slots)])
    counts = model.processor.audio_positions(16000 * 2)
    assert f"<audio><meta>{'#' * counts['paralinguistic']}</meta><text>{'#' * counts['semantic']}</text></audio>" in text
    assert counts["semantic"] == int(model.branches["semantic"].encoder.frame_rate * 2 / 4)


def test_two_stage_training(sift, tmp_path):
    stage1, stage2 = tmp_path / "stage1", tmp_path / "stage2"
    align(f"data.train.0.path={sift}", f"train.out_dir={stage1}", config=STAGE1)
    align(f"data.train.0.path={sift}", f"train.out_dir={stage2}", f"train.init_from={stage1 / 'final'}",
          config=STAGE2)
    first = load_file(stage1 / "final" / "trained.safetensors")
    second = load_file(stage2 / "final" / "trained.safetensors")
    assert {k.split(".")[1] for k in second} == {"semantic", "paralinguistic"}
    for name, weight in first.items():
        assert torch.equal(second[name], weight), f"{name} changed in stage 2"
    fresh = LALM(load_config(STAGE2, cls=AlignConfig).model).trained_state_dict()
    changed = [k for k in second if "paralinguistic" in k and not torch.equal(second[k], fresh[k])]
    assert changed, "stage 2 did not train the paralinguistic projector"
    LALM.from_pretrained(stage2 / "final")
