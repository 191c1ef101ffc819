"""The streaming upsamplers against an offline band-limited reference."""
from __future__ import annotations

import numpy as np
import pytest

from asr.resample import RESAMPLERS, Upsampler, fft_upsample, make_upsampler

from .conftest import fixture_pcm


def tone(freq: float, seconds: float = 1.0, amp: float = 8000.0) -> bytes:
    t = np.arange(int(8000 * seconds)) / 8000.0
    return np.rint(amp * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def stream(up: Upsampler, pcm: bytes, chunk: int = 320) -> np.ndarray:
    out = b"".join(up.process(pcm[i:i + chunk]) for i in range(0, len(pcm), chunk))
    return np.frombuffer(out, dtype="<i2").astype(np.float64)


def error_db(kind: str, pcm: bytes) -> float:
    """Error of the aligned output against the band-limited reference, in dB relative to the signal."""
    y = stream(Upsampler(kind), pcm)
    ref = np.frombuffer(fft_upsample(pcm), dtype="<i2").astype(np.float64)
    best = np.inf
    for d in range(0, 40):  # the filters' delay, in output samples
        a, b = y[d + 400:len(y) - 400], ref[400:len(ref) - 400 - d]
        best = min(best, float(np.mean((a - b) ** 2)))
    return 10 * np.log10((best + 1e-9) / np.mean(ref[400:-400] ** 2))


@pytest.mark.parametrize("freq", [300.0, 1000.0, 2500.0])
def test_sinc_is_close_to_the_reference_and_beats_linear(freq: float) -> None:
    pcm = tone(freq)
    sinc, linear = error_db("sinc", pcm), error_db("linear", pcm)
    assert sinc < -30.0
    assert sinc < linear - 10.0


def test_speech_error_levels() -> None:
    pcm = fixture_pcm("c01")
    assert error_db("sinc", pcm) < -25.0
    assert error_db("linear", pcm) > error_db("sinc", pcm)


@pytest.mark.parametrize("kind", ["sinc", "linear"])
@pytest.mark.parametrize("chunk", [2, 320, 1000])
def test_streaming_is_seamless(kind: str, chunk: int) -> None:
    pcm = fixture_pcm("m03")
    whole = stream(Upsampler(kind), pcm, chunk=len(pcm))
    assert np.array_equal(stream(Upsampler(kind), pcm, chunk=chunk), whole)
    assert len(whole) == len(pcm)  # twice the samples, two bytes each


def test_dc_passes_with_unit_gain() -> None:
    pcm = np.full(800, 1000, dtype="<i2").tobytes()
    for kind in ("sinc", "linear"):
        y = stream(Upsampler(kind), pcm)
        assert np.all(np.abs(y[100:] - 1000) <= 1)


def test_other_factors() -> None:
    pcm = tone(500.0, 0.2)
    y = stream(Upsampler("sinc", factor=3), pcm)
    assert len(y) == 3 * len(pcm) // 2
    y1 = stream(Upsampler("sinc", factor=1), pcm)  # a pure delay of half the filter (8 samples)
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    assert np.abs(y1[8:] - x[:-8]).max() <= 1


def test_choices_and_errors() -> None:
    assert RESAMPLERS == ("vosk", "sinc", "linear")
    assert make_upsampler("vosk") is None
    assert isinstance(make_upsampler("sinc"), Upsampler)
    with pytest.raises(ValueError, match=r"^unknown resampler 'cubic'; choose one of vosk, sinc, linear$"):
        make_upsampler("cubic")
    with pytest.raises(ValueError, match=r"^unknown upsampler 'vosk'; choose sinc or linear$"):
        Upsampler("vosk")
    with pytest.raises(ValueError, match=r"^upsampling factor must be at least 1, not 0$"):
        Upsampler("sinc", factor=0)
    assert Upsampler("sinc").process(b"") == b""
    assert fft_upsample(b"") == b""
    assert len(fft_upsample(tone(100.0, 0.1))) == 2 * len(tone(100.0, 0.1))


def test_sinc_passes_input_samples_through_on_the_whole_sample_phase() -> None:
    x = np.frombuffer(fixture_pcm("c01"), dtype="<i2")
    y = stream(Upsampler("sinc"), x.tobytes())
    delay = 8  # half the 16 taps per phase
    assert np.array_equal(y[0::2][delay:], x[:len(x) - delay].astype(np.float64))
