"""Streaming 8 kHz -> 16 kHz upsamplers for the recogniser boundary.

Three choices, compared by `bench/asr_resample.py`:
- "vosk": hand 8 kHz to Vosk, which resamples inside Kaldi (windowed-sinc LinearResample);
- "sinc": our polyphase windowed-sinc 2x interpolator (numpy, state kept across frames);
- "linear": sample-and-average interpolation, the cheapest and the worst.
"""
from __future__ import annotations

import numpy as np

__all__ = ["RESAMPLERS", "Upsampler", "make_upsampler"]

RESAMPLERS = ("vosk", "sinc", "linear")


class Upsampler:
    """Doubles the rate of a PCM16 stream; `process()` keeps filter state between calls."""

    def __init__(self, kind: str = "sinc", taps_per_phase: int = 16) -> None:
        if kind not in ("sinc", "linear"):
            raise ValueError(f"unknown upsampler {kind!r}; choose sinc or linear")
        self.kind = kind
        n = 2 * taps_per_phase
        t = np.arange(n) - (n - 1) / 2.0  # centred on half-sample positions
        h = np.sinc(t / 2.0) * np.kaiser(n, 8.0)
        self._even = h[0::2][::-1].astype(np.float32)
        self._odd = h[1::2][::-1].astype(np.float32)
        self._even *= 1.0 / self._even.sum()
        self._odd *= 1.0 / self._odd.sum()
        self._hist = np.zeros(taps_per_phase - 1, dtype=np.float32)
        self._last = 0.0

    def process(self, pcm: bytes) -> bytes:
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
        if len(x) == 0:
            return b""
        out = np.empty(2 * len(x), dtype=np.float32)
        if self.kind == "linear":
            prev = np.concatenate(([self._last], x[:-1]))
            out[0::2] = (prev + x) / 2.0
            out[1::2] = x
            self._last = float(x[-1])
        else:
            buf = np.concatenate((self._hist, x))
            out[0::2] = np.convolve(buf, self._even[::-1], mode="valid")
            out[1::2] = np.convolve(buf, self._odd[::-1], mode="valid")
            self._hist = buf[len(buf) - len(self._hist):]
        return np.clip(np.rint(out), -32768, 32767).astype("<i2").tobytes()


def make_upsampler(kind: str) -> Upsampler | None:
    """None for "vosk" (the recogniser resamples itself)."""
    if kind not in RESAMPLERS:
        raise ValueError(f"unknown resampler {kind!r}; choose one of {', '.join(RESAMPLERS)}")
    return None if kind == "vosk" else Upsampler(kind)
