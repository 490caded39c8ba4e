"""Recognizers: the frozen Whisper decoder batched, and a transcript rendered into the prompt as text."""

import json

import numpy as np
import pytest
import torch

from lalm import LALM, load_config
from lalm.clips import pad_waveforms
from lalm.config import ConfigError
from lalm.paths import kit_config
from lalm.recognizers import RECOGNIZERS, build_recognizer
from tests.helpers import TINY_WHISPER_WORDS, write_tiny_whisper


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory):
    return write_tiny_whisper(tmp_path_factory.mktemp("whisper"))


def clips(rng, seconds=(0.7, 1.6, 2.3)):
    return [torch.from_numpy(rng.standard_normal(int(16000 * s)).astype(np.float32) * 0.1) for s in seconds]


def test_registry_lists_valid_names():
    with pytest.raises(KeyError, match="valid: phoneme_ctc, whisper"):
        RECOGNIZERS.get("nope")


def test_batched_transcripts_equal_one_at_a_time(whisper_dir, rng):
    recognizer = build_recognizer("whisper", str(whisper_dir), {"batch_size": 8})
    waves = clips(rng)
    batched = recognizer.transcribe(*pad_waveforms(waves))
    alone = [recognizer.transcribe(*pad_waveforms([w]))[0] for w in waves]
    assert batched == alone
    assert all(set(t.split()) <= set(TINY_WHISPER_WORDS) for t in batched)
    # The per-clip limit: 10 + tokens_per_second * seconds tokens, whatever a random decoder emits.
    limited = build_recognizer("whisper", str(whisper_dir), {"tokens_per_second": 0.0})
    assert all(len(t.split()) <= 10 for t in limited.transcribe(*pad_waveforms(waves)))


def test_long_clip_is_decoded_in_30s_windows(whisper_dir, rng):
    recognizer = build_recognizer("whisper", str(whisper_dir), {})
    wave = clips(rng, (31.0,))[0]
    first, rest = recognizer.transcribe(*pad_waveforms([wave[: 30 * 16000]]))[0], \
        recognizer.transcribe(*pad_waveforms([wave[30 * 16000:]]))[0]
    assert recognizer.transcribe(*pad_waveforms([wave]))[0] == " ".join(t for t in (first, rest) if t)


def model_config(whisper_dir, layout="<audio>{audio}</audio><text>{transcript}</text>"):
    return load_config(kit_config("tiny.yaml"), [
        f"model.recognizer={json.dumps({'name': 'whisper', 'path': str(whisper_dir)})}",
        f"model.prompt.layout={layout}"])


def test_config_problems_name_the_transcript_slot(whisper_dir):
    with pytest.raises(ConfigError, match=r"must place \{transcript\} exactly once"):
        model_config(whisper_dir, layout="<audio>{audio}</audio>")
    with pytest.raises(ConfigError, match=r"\{transcript\} needs model.recognizer"):
        load_config(kit_config("tiny.yaml"), ["model.prompt.layout=<audio>{audio}{transcript}</audio>"])
    with pytest.raises(ConfigError, match="unknown recognizer 'nope'"):
        load_config(kit_config("tiny.yaml"), ["model.recognizer.name=nope", "model.recognizer.path=x"])
    with pytest.raises(ConfigError, match="has no option"):
        load_config(kit_config("tiny.yaml"), [f"model.recognizer.path={whisper_dir}", "model.recognizer.options.beam=4",
                                              "model.prompt.layout=<audio>{audio}{transcript}</audio>"])


def test_transcript_is_rendered_as_text_and_counts_follow_the_formula(whisper_dir, rng):
    model = LALM(model_config(whisper_dir).model).eval()
    waves = clips(rng, (1.2, 2.0))
    heard = model.transcribe(waves)
    conversation = [{"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": "what is said?"}]}]
    batch = model.prepare([conversation, conversation], [[w] for w in waves])
    for row, (wave, text) in enumerate(zip(waves, heard)):
        ids, slots = batch["input_ids"][row], batch["slots"][row]
        # audio positions: the formula on the clip's length, no projection needed first
        assert int((slots == 1).sum()) == model.processor.audio_positions(wave.numel())["audio"]
        rendered = model.tokenizer.decode(ids[(slots == 0) & (batch["attention_mask"][row] == 1)])
        assert f"</audio><text>{text}</text>what is said?" in rendered
    assert not model.processor.dynamic
    # the recognizer is frozen and is no trained weight
    assert not any(k.startswith("recognizer.") for k in model.trained_state_dict())
    assert model.generate([waves[0]], "what is said?", max_new_tokens=3) is not None
