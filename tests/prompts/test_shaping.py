"""Prompts shaped for the telephone: band-limited, levelled on active speech so no prompt of a style is louder than
another by more than 2 dB, however long its pauses, and never clipped."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr.audio import SAMPLE_RATE, read_wav
from bench.prompt_intelligibility import gated_loudness_db  # an independent loudness meter
from prompts.render import STYLE_LEVEL_DBFS
from prompts.shaping import level_pcm, shape, speech_level_dbfs, telephone_band


def syllables(pause_fraction: float, amplitude: float, seconds: float = 3.0, seed: int = 0) -> bytes:
    """Speech-like bursts: 200 ms voiced syllables (harmonics, a peaky onset) with `pause_fraction` of silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SAMPLE_RATE * 0.2)) / SAMPLE_RATE
    syllable = sum(np.sin(2 * np.pi * 160 * k * t) / k for k in range(1, 12)) * np.hanning(len(t)) ** 0.5
    syllable[:80] *= 3.0  # plosive-like peak: a high crest factor, as in real speech
    pause = np.zeros(int(len(t) * pause_fraction / (1 - pause_fraction)))
    out = []
    while sum(map(len, out)) < seconds * SAMPLE_RATE:
        out += [syllable * rng.uniform(0.7, 1.0), pause]
    x = np.concatenate(out)
    x = amplitude * x / np.abs(x).max()
    return np.rint(x * 32767).astype("<i2").tobytes()


def test_pauses_do_not_make_a_prompt_louder() -> None:
    busy, sparse = syllables(0.1, 0.3), syllables(0.4, 0.9, seed=1)  # one talks on, the other pauses often
    for target in STYLE_LEVEL_DBFS.values():
        a, b = level_pcm(busy, target), level_pcm(sparse, target)
        assert abs(speech_level_dbfs(a) - target) < 0.3 and abs(speech_level_dbfs(b) - target) < 0.3
        assert abs(gated_loudness_db(a) - gated_loudness_db(b)) < 2.0  # the independent meter agrees
        for p in (a, b):
            assert np.abs(np.frombuffer(p, dtype="<i2")).max() < 32767  # the limiter rounds peaks off, no clipping


def test_telephone_band() -> None:
    rng = np.random.default_rng(7)
    noise = np.rint(rng.normal(0, 3000, SAMPLE_RATE * 2)).astype("<i2").tobytes()
    banded = np.frombuffer(telephone_band(noise), dtype="<i2").astype(np.float64)
    before = np.abs(np.fft.rfft(np.frombuffer(noise, dtype="<i2").astype(np.float64))) ** 2
    after = np.abs(np.fft.rfft(banded)) ** 2
    f = np.fft.rfftfreq(len(banded), 1 / SAMPLE_RATE)

    def db(band: tuple[float, float]) -> float:
        m = (f >= band[0]) & (f < band[1])
        return float(10 * np.log10(after[m].sum() / before[m].sum()))

    assert db((0, 150)) < -20 and db((3600, 4000)) < -20
    assert abs(db((500, 3000))) < 0.5


def test_shape_keeps_silence_silent() -> None:
    assert shape(bytes(1600), -20.0) == bytes(1600)


def test_rendered_catalogue_is_level_matched_per_style(prompt_cache: Path) -> None:
    """The shipped catalogue as rendered for the tests (espeak-ng): within a style, 2 dB at most between prompts."""
    for style, target in STYLE_LEVEL_DBFS.items():
        sentences = [p for p in (prompt_cache / style).glob("*.wav") if not p.stem.startswith("num_")]
        assert len(sentences) > 40
        levels = [gated_loudness_db(read_wav(p)) for p in sentences]
        assert max(levels) - min(levels) <= 2.0, (style, min(levels), max(levels))
        assert all(abs(speech_level_dbfs(read_wav(p)) - target) < 0.5 for p in sentences)


@pytest.mark.parametrize("style", list(STYLE_LEVEL_DBFS))
def test_every_piece_is_levelled_too(prompt_cache: Path, style: str) -> None:
    digits = [read_wav(prompt_cache / style / f"num_{d}.wav") for d in "0123456789"]
    assert max(map(speech_level_dbfs, digits)) - min(map(speech_level_dbfs, digits)) < 1.0
