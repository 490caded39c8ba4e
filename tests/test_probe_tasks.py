"""Probing tasks: the synthetic makers produce what their labels claim, splits hold, folders resume;
the Hugging Face loader on tiny local datasets built here."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from lalm.eval.probing import synthetic
from lalm.eval.probing.hf_sets import load_hf_task
from lalm.eval.probing.tasks import read_task

pytestmark = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                                reason="needs espeak-ng and sox (apt-get install espeak-ng sox)")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    out = tmp_path_factory.mktemp("tasks")
    return {name: read_task(synthetic.make_task(name, out, size=60, seed=0, progress=False))
            for name in synthetic.SYNTHETIC}


def dominant_hz(path) -> float:
    wave, rate = sf.read(path)
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()])


def test_every_task_is_a_readable_folder_with_all_three_splits(made):
    for name, task in made.items():
        assert {c.split for c in task.clips} == {"train", "valid", "test"}, name
        assert set(task.info.labels) == {c.label for c in task.clips}, name
        for clip in task.clips[:5]:
            wave, rate = sf.read(clip.audio)
            assert len(wave) > rate * 0.2 and np.abs(wave).max() > 0.01, (name, clip.audio)


def test_pitch_class_notes_sound_at_their_pitch(made):
    notes = synthetic.NOTES
    for clip in made["pitch_class"].clips:
        heard = dominant_hz(clip.audio)
        midi = 69 + 12 * np.log2(heard / 440.0)
        assert notes[round(midi) % 12] == clip.label, (clip.audio, heard, clip.meta)


def test_sound_types_differ_as_labelled(made):
    by = {}
    for clip in made["sound_type"].clips:
        wave, _ = sf.read(clip.audio)
        spectrum = np.abs(np.fft.rfft(wave))
        by.setdefault(clip.label, []).append(spectrum[: len(spectrum) // 8].sum() / spectrum.sum())  # low-band share
    assert np.mean(by["brownnoise"]) > np.mean(by["pinknoise"]) > np.mean(by["whitenoise"])
    for clip in made["sound_type"].clips:
        if clip.label == "upchirp":
            wave, rate = sf.read(clip.audio)
            half = len(wave) // 2
            assert dominant_hz_of(wave[:half], rate) < dominant_hz_of(wave[half:], rate)


def dominant_hz_of(wave, rate) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()])


def test_speech_rows_record_what_was_spoken_and_splits_hold_out(made):
    for clip in made["language_id"].clips:
        assert clip.meta["voice"].split("+")[0] == clip.label
    for name in ("voice_id", "gender", "language_id"):
        texts = {s: {c.meta["text"] for c in made[name].clips if c.split == s} for s in ("train", "test")}
        assert not texts["train"] & texts["test"], name  # no sentence heard in both
    for name in ("gender", "keyword", "speaking_rate"):
        voices = {s: {c.meta["voice"] for c in made[name].clips if c.split == s} for s in ("train", "test")}
        assert not voices["train"] & voices["test"], name  # test voices are never trained on
    for clip in made["speaking_rate"].clips:
        low, high = synthetic.RATE_BINS[clip.label]
        assert low <= clip.meta["rate"] <= high
    voices = synthetic.VOICES
    for clip in made["gender"].clips:
        assert clip.label == {**voices["train"], **voices["eval"]}[clip.meta["voice"]]


def test_a_slower_rate_is_a_longer_clip(tmp_path):
    durations = []
    for rate in (100, 250):
        wav = tmp_path / f"{rate}.wav"
        synthetic.render(synthetic.speech("The weather is lovely today.", "en+m3", rate, 50), wav)
        durations.append(sf.info(wav).duration)
    assert durations[0] > 1.6 * durations[1]


def test_a_finished_task_is_reused_and_a_lost_clip_remade(tmp_path):
    folder = synthetic.make_task("keyword", tmp_path, size=30, seed=1, progress=False)
    clips = sorted((folder / "clips").glob("*.wav"))
    stamps = [c.stat().st_mtime_ns for c in clips]
    assert synthetic.make_task("keyword", tmp_path, size=30, seed=1, progress=False) == folder
    assert [c.stat().st_mtime_ns for c in clips] == stamps
    clips[0].unlink()
    (folder / "task.json").unlink()  # as if killed before the task was finished
    synthetic.make_task("keyword", tmp_path, size=30, seed=1, progress=False)
    assert clips[0].is_file() and [c.stat().st_mtime_ns for c in clips[1:]] == stamps[1:]


def test_make_tasks_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lalm.eval.probing.make_tasks", "--tasks", "pitch_class",
                           "--out", str(tmp_path), "--size", "24"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert read_task(done.stdout.split()[-1]).info.name == "pitch_class"
    bad = subprocess.run([sys.executable, "-m", "lalm.eval.probing.make_tasks", "--tasks", "nope", "--out",
                          str(tmp_path)], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "pitch_class" in bad.stderr


# --- Hugging Face datasets, built locally ------------------------------------------------------------


def tone(freq: float, seconds: float = 0.5, rate: int = 8000) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)).astype(np.float32)


def wav_bytes(wave: np.ndarray, rate: int = 8000) -> bytes:
    """Encoded audio, as a dataset stores it (datasets itself needs torchcodec to encode audio)."""
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, format="WAV")
    return buffer.getvalue()


def local_dataset(tmp_path, splits: dict[str, int], **columns):
    import datasets

    parts = {}
    for split, n in splits.items():
        data = {"clip": [{"bytes": wav_bytes(tone(200 + 100 * (i % 2))), "path": None} for i in range(n)],
                "kind": [i % 2 for i in range(n)], **{k: [f(i) for i in range(n)] for k, f in columns.items()}}
        # audio stored as Hub audio columns are ({bytes, path}); the loader casts it to Audio itself
        features = datasets.Features({"clip": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
                                      "kind": datasets.ClassLabel(names=["low", "high"]),
                                      **{k: datasets.Value("int64" if isinstance(f(0), int) else "string")
                                         for k, f in columns.items()}})
        parts[split] = datasets.Dataset.from_dict(data, features=features)
    datasets.DatasetDict(parts).save_to_disk(str(tmp_path / "ds"))
    return str(tmp_path / "ds")


def test_hf_folds_and_column_mapping(tmp_path):
    source = local_dataset(tmp_path, {"train": 20}, fold=lambda i: i % 5 + 1)
    task = read_task(load_hf_task("tiny_esc", source, tmp_path / "tasks", audio_column="clip", label_column="kind",
                                  protocol="folds", fold_column="fold", folds=5))
    assert task.info.protocol == "folds" and sorted({c.fold for c in task.clips}) == [1, 2, 3, 4, 5]
    assert {c.label for c in task.clips} == {"low", "high"}
    wave, rate = sf.read(task.clips[1].audio)
    assert rate == 16000 and abs(dominant_hz_of(wave, rate) - 300) < 5  # resampled, still the same tone


def test_hf_speaker_disjoint_and_own_splits(tmp_path):
    source = local_dataset(tmp_path, {"train": 40}, actor=lambda i: f"a{i % 10}")
    task = read_task(load_hf_task("tiny_crema", source, tmp_path / "tasks", audio_column="clip",
                                  label_column="kind", protocol="grouped", group_column="actor", seed=2))
    sides = {s: {c.group for c in task.clips if c.split == s} for s in ("train", "valid", "test")}
    assert all(sides.values()) and not (sides["train"] & sides["test"] or sides["train"] & sides["valid"])
    own = local_dataset(tmp_path / "own", {"train": 6, "validation": 4, "test": 4})
    task = read_task(load_hf_task("tiny_sc", own, tmp_path / "tasks", audio_column="clip", label_column="kind"))
    assert [sum(c.split == s for c in task.clips) for s in ("train", "valid", "test")] == [6, 4, 4]
    with pytest.raises(Exception, match="no column 'nope'"):
        load_hf_task("bad", own, tmp_path / "tasks", audio_column="nope")
