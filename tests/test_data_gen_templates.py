"""The documented LLM inputs of each SIFT mode, and the one metadata table behind `(male, happy)`."""

from __future__ import annotations

import pytest

from lalm.data_gen.meta import MetaError, MetaNormaliser, load_meta_map
from lalm.data_gen.templates import DEFAULT_INSTRUCTIONS, SYSTEM_PROMPTS, pick_instruction, render

TRANSCRIPT = "What shall we do if they walk in on us"
HEAR = (
    "You are a helpful assistant who can hear. The user speaks to you; the text in brackets describes how they "
    "sound (gender, age, emotion, language). Answer as if you had heard them speak, and never mention the brackets."
)


def test_sift_s_is_the_bare_transcript():
    prompt = render("sift_s", TRANSCRIPT, ["male", "happy"])
    assert prompt.messages == [{"role": "user", "content": TRANSCRIPT}]
    assert prompt.instruction is None


def test_sift_sp_appends_the_labels_in_brackets():
    prompt = render("sift_sp", TRANSCRIPT, ["male", "happy"])
    assert prompt.messages == [{"role": "user", "content": "What shall we do if they walk in on us (male, happy)"}]
    assert render("sift_sp", TRANSCRIPT, []).messages == [{"role": "user", "content": TRANSCRIPT}]


def test_sit_sp_adds_and_stores_the_instruction():
    prompt = render("sit_sp", TRANSCRIPT, ["female"], instruction=DEFAULT_INSTRUCTIONS[0])
    assert prompt.messages == [{"role": "user", "content": f"{TRANSCRIPT} (female)\n\n"
                                                           "Describe all the information you can hear."}]
    assert prompt.instruction == "Describe all the information you can hear."
    with pytest.raises(ValueError, match="needs an instruction"):
        render("sit_sp", TRANSCRIPT, ["female"])


@pytest.mark.parametrize("mode", ["sift_s", "sift_sp", "sit_sp"])
def test_hear_system_prompt_comes_first_in_every_mode(mode):
    prompt = render(mode, TRANSCRIPT, ["male"], system="hear", instruction="Describe it.")
    assert prompt.messages[0] == {"role": "system", "content": HEAR} == {"role": "system",
                                                                         "content": SYSTEM_PROMPTS["hear"]}
    assert [m["role"] for m in prompt.messages] == ["system", "user"]


def test_instruction_choice_is_stable_per_id():
    options = ("a", "b", "c")
    picks = [pick_instruction(options, f"utt{i}") for i in range(60)]
    assert picks == [pick_instruction(options, f"utt{i}") for i in range(60)]
    assert set(picks) == set(options)


@pytest.mark.parametrize(("years", "group"), [
    (8, "child"), (12, "child"), (13, "teenager"), (19, "teenager"), (20, "young adult"), (39, "young adult"),
    (40, "middle-aged adult"), (59.5, "middle-aged adult"), (60, "senior"), ("71", "senior"),
    ("twenties", "young adult"), ("fourties", "middle-aged adult"),
])
def test_age_groups(years, group):
    assert MetaNormaliser().normalise({"age": years}) == {"age": group}


@pytest.mark.parametrize(("raw", "canonical"), [
    ("hap", "happy"), ("HAP", "happy"), ("happiness", "happy"), ("Joy", "happy"), ("ang", "angry"),
    ("sad", "sad"), ("neu", "neutral"), ("sur", "surprised"), ("fea", "fearful"), ("dis", "disgusted"),
])
def test_emotion_vocabulary(raw, canonical):
    assert MetaNormaliser().normalise({"emotion": raw}) == {"emotion": canonical}


def test_gender_and_render_order_and_pass_through():
    norm = MetaNormaliser()
    meta = norm.normalise({"emotion": "neu", "speaker": "spk7", "gender": "F", "age": 45, "language": "en"})
    assert meta == {"emotion": "neutral", "speaker": "spk7", "gender": "female", "age": "middle-aged adult",
                    "language": "English"}
    assert norm.render(meta) == ["female", "middle-aged adult", "neutral", "English"]
    assert norm.normalise({"gender": "M", "emotion": "unknown"}) == {"gender": "male"}


def test_unknown_values_name_field_value_and_valid_ones():
    with pytest.raises(MetaError, match=r"meta\.gender: unknown value 'x'; valid: female, male"):
        MetaNormaliser().normalise({"gender": "x"})
    with pytest.raises(MetaError, match="not a plausible age"):
        MetaNormaliser().normalise({"age": 250})


def test_meta_map_file_extends_the_table(tmp_path):
    (tmp_path / "extra.yaml").write_text("emotion: {jubilant: happy, bored: bored}\naccent: {us: American}\n")
    norm = load_meta_map(tmp_path / "extra.yaml")
    meta = norm.normalise({"accent": "US", "emotion": "jubilant", "gender": "m"})
    assert norm.render(meta) == ["male", "happy", "American"]
    assert norm.normalise({"emotion": "Bored"}) == {"emotion": "bored"}
