"""Streaming integer-factor upsamplers (8 kHz -> 16 kHz) for the recogniser boundary.

Three choices, compared by `bench/asr_resample.py`:
- "vosk": hand 8 kHz to Vosk, which resamples inside Kaldi (windowed-sinc LinearResample);
- "sinc": our polyphase Kaiser-windowed-sinc interpolator (numpy, filter state kept across frames);
- "linear": straight-line interpolation between neighbouring samples, the cheapest and the worst.
Both of ours delay nothing (the sinc filter is applied with a look-back only, half its length late), keep state
between calls so frame edges are seamless, and return PCM16 bytes.
"""
from __future__ import annotations

import numpy as np

__all__ = ["RESAMPLERS", "Upsampler", "make_upsampler", "fft_upsample"]

RESAMPLERS = ("vosk", "sinc", "linear")


class Upsampler:
    """Multiplies the rate of a PCM16 stream by `factor`; `process()` keeps filter state between calls."""

    def __init__(self, kind: str = "sinc", factor: int = 2, taps_per_phase: int = 16) -> None:
        if kind not in ("sinc", "linear"):
            raise ValueError(f"unknown upsampler {kind!r}; choose sinc or linear")
        if factor < 1:
            raise ValueError(f"upsampling factor must be at least 1, not {factor}")
        self.kind = kind
        self.factor = factor
        n = factor * taps_per_phase
        t = (np.arange(n) - n // 2) / factor  # tap positions in input samples; phase 0 falls on whole samples
        half = taps_per_phase / 2.0
        h = np.sinc(t) * np.i0(8.0 * np.sqrt(np.clip(1.0 - (t / half) ** 2, 0.0, 1.0))) / np.i0(8.0)
        # phase p produces output sample k*factor + p from the last taps_per_phase inputs
        phases = [h[p::factor][::-1].astype(np.float32) for p in range(factor)]
        phases = [ph / ph.sum() for ph in phases]
        # a phase on whole input samples is a unit impulse (sinc is zero at the other integers): a copy, not a filter
        self._copy = [int(np.argmax(ph)) if np.count_nonzero(np.abs(ph) > 1e-6) == 1 else -1 for ph in phases]
        self._kernels = [ph[::-1].copy() for ph in phases]  # np.convolve flips its kernel
        self._hist = np.zeros(taps_per_phase - 1, dtype=np.float32)
        self._last = 0.0

    def process(self, pcm: bytes) -> bytes:
        x = np.frombuffer(pcm, dtype="<i2")
        if len(x) == 0:
            return b""
        f = self.factor
        out = np.empty(f * len(x), dtype=np.float32)
        if self.kind == "linear":
            prev = np.concatenate(([self._last], x[:-1]))
            for p in range(f):
                w = (p + 1) / f
                out[p::f] = prev + (x - prev) * w
            self._last = float(x[-1])
        else:
            buf = np.concatenate((self._hist, x))  # float32
            for p, kernel in enumerate(self._kernels):
                i = self._copy[p]
                out[p::f] = buf[i:i + len(x)] if i >= 0 else np.convolve(buf, kernel, mode="valid")
            self._hist = buf[len(buf) - len(self._hist):]
        np.rint(out, out=out)
        np.clip(out, -32768, 32767, out=out)
        return out.astype("<i2").tobytes()


def make_upsampler(kind: str, factor: int = 2) -> Upsampler | None:
    """An upsampler by name; None for "vosk" (the recogniser resamples itself)."""
    if kind not in RESAMPLERS:
        raise ValueError(f"unknown resampler {kind!r}; choose one of {', '.join(RESAMPLERS)}")
    return None if kind == "vosk" else Upsampler(kind, factor)


def fft_upsample(pcm: bytes, factor: int = 2) -> bytes:
    """Offline band-limited upsampling of a whole recording (zero-padded spectrum): a reference, not for streams."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if len(x) == 0:
        return b""
    spec = np.fft.rfft(x)
    n_out = factor * len(x)
    padded = np.zeros(n_out // 2 + 1, dtype=complex)
    padded[: len(spec)] = spec
    if len(x) % 2 == 0:  # the Nyquist bin of the input is split between +/- frequencies
        padded[len(spec) - 1] *= 0.5
    y = np.fft.irfft(padded, n_out) * factor
    return np.clip(np.rint(y), -32768, 32767).astype("<i2").tobytes()
