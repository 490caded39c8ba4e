"""Speaking rate of a spoken clip, measured from its text and audio, so every synthesised clip carries a
pace label whatever engine made it (an espeak-ng speed, a Piper length scale and a Kokoro speed are
not comparable units; syllables per second of speech are).

The rate is syllables (vowel groups of the text, a standard approximation) over the seconds between
the first and last loud frame. Clips between the two bounds are `medium`: a pace question is only
asked where the answer is clear.
"""

from __future__ import annotations

import re

import numpy as np

SAMPLE_RATE = 16_000
#: Syllables per second of speech below which a clip is `slow`, and above which it is `fast`.
SLOW_BELOW = 4.0
FAST_ABOVE = 5.5
#: A 20 ms frame is speech when its RMS reaches this fraction of the clip's loudest frame.
SPEECH_LEVEL = 0.05


def syllables(text: str) -> int:
    """Vowel groups per word (a final silent e dropped), at least one per word."""
    count = 0
    for word in re.findall(r"[a-z']+", text.lower()):
        groups = re.findall(r"[aeiouy]+", word)
        n = len(groups) - (1 if word.endswith("e") and not word.endswith("le") and len(groups) > 1 else 0)
        count += max(1, n)
    return count


def speech_seconds(wave: np.ndarray) -> float:
    """Seconds from the first to the last frame of speech (leading and trailing silence cut)."""
    frame = SAMPLE_RATE // 50
    n = len(wave) // frame
    if n == 0:
        return len(wave) / SAMPLE_RATE
    rms = np.sqrt(np.mean(wave[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
    loud = np.flatnonzero(rms >= SPEECH_LEVEL * rms.max()) if rms.max() > 0 else np.array([])
    if loud.size == 0:
        return len(wave) / SAMPLE_RATE
    return (loud[-1] - loud[0] + 1) * frame / SAMPLE_RATE


def pace_meta(text: str, wave: np.ndarray) -> dict:
    """{"syllables_per_second", "pace"} of one clip: pace is `slow`, `medium` or `fast`."""
    rate = syllables(text) / max(speech_seconds(wave), 0.1)
    label = "slow" if rate < SLOW_BELOW else "fast" if rate > FAST_ABOVE else "medium"
    return {"syllables_per_second": round(rate, 2), "pace": label}
