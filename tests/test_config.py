from pathlib import Path

import pytest

from lalm.config import Config, ConfigError, apply_override, load_config

# Every yaml under configs/ is validated as the command in its opening lines runs it:
# tests/test_documented_configs.py.


def test_all_problems_are_reported_together(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "model:\n"
        "  branches:\n"
        "    - name: audio\n"
        "      encoder: {name: wisper, path: x, colour: red}\n"
        "      projector: {name: stack}\n"
        "  llm: {dtype: float8, seed: one}\n"
        "  prompt: {layout: '<a>{speech}</a>'}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    text = str(err.value)
    for fragment in ["colour: unknown key", "unknown encoder 'wisper'", "valid: fbank, hf, prosody, whisper", "unknown projector 'stack'",
                     "'float8' is not one of", "seed: expected int", "{audio} exactly once", "{speech} names no branch",
                     "exactly one of `path`"]:
        assert fragment in text, fragment
    assert len(err.value.problems) >= 8


def test_overrides_reach_nested_keys_and_list_items(tiny_config):
    from tests.conftest import TINY

    cfg = load_config(TINY, ["model.llm.dtype=bfloat16", "model.branches.0.projector.options.k=2",
                             "model.prompt.system_prompt=Listen."])
    assert cfg.model.llm.dtype == "bfloat16"
    assert cfg.model.branches[0].projector.options["k"] == 2
    assert cfg.model.prompt.system_prompt == "Listen."


def test_exponent_floats_without_a_dot_are_numbers():
    # YAML 1.1 (PyYAML) reads `6e-3` as text; a float field takes it, a word still is a problem
    from lalm.train.config import AlignConfig

    demo = Path(__file__).resolve().parents[1] / "configs" / "demo_offline.yaml"
    assert load_config(demo, ["train.lr=6e-3"], cls=AlignConfig).train.lr == 0.006
    with pytest.raises(ConfigError, match="train.lr: expected float, got 'fast'"):
        load_config(demo, ["train.lr=fast"], cls=AlignConfig)


def test_bad_overrides_are_explained():
    data = {"model": {"branches": [{}]}}
    assert "use an index" in apply_override(data, "model.branches.x.name=a")[0]
    assert "key.sub=value" in apply_override(data, "model.llm.dtype")[0]
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(None, ["model.llm.colour=red", "model.llm.random_config={}"])


def test_option_typos_are_config_problems_before_any_weights_load() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(
            Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml",
            ["model.branches.0.projector.options.kk=3", "model.branches.0.encoder.options.pad_to_sec=1",
             "model.branches.0.encoder.options.path=x", "model.llm.dtype=bf16"],
        )
    problems = caught.value.problems
    assert len(problems) == 3  # all at once (encoder typos share a line), with the dtype problem
    assert any("projector 'stack_mlp' has no option(s) kk; valid options: k, hidden" in p for p in problems)
    assert any("encoder 'whisper' has no option(s) pad_to_sec" in p and "pad_to_seconds" in p for p in problems)
    assert any("path is set by the config, not as an option" in p for p in problems)


def test_training_yaml_opens_as_a_model_config() -> None:
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "tiny_align.yaml")
    assert type(cfg) is Config and cfg.model.branches


def test_align_help_lists_every_setting_with_its_default_and_doc() -> None:
    import dataclasses

    from lalm.config import describe_fields
    from lalm.train.align import settings_help
    from lalm.train.config import AlignConfig, TrainConfig

    lines = describe_fields(AlignConfig)
    assert "train.steps (1000): Optimiser steps." in lines
    assert any(line.startswith("data.train.0.target_field ('response'): ") for line in lines)
    assert all(": " in line for line in lines), [line for line in lines if ": " not in line]  # none undocumented
    assert len([line for line in lines if line.startswith("train.")]) == len(dataclasses.fields(TrainConfig))
    assert "train.lr (0.001)" in settings_help()


def test_an_option_declared_optional_takes_none():
    from lalm.recognizers import RECOGNIZERS

    assert RECOGNIZERS.option_problems("phoneme_ctc", {"wordnet": None}, ("in_dim", "lm"), "p") == []
    wrong = RECOGNIZERS.option_problems("phoneme_ctc", {"voice": None}, ("in_dim", "lm"), "p")
    assert wrong and "takes a string" in wrong[0]
