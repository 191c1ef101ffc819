"""In-band DTMF detector for 8 kHz PCM16 (keys sent as tones inside the audio).

Analysis runs on 20 ms Hann windows every 10 ms. A first pass evaluates the eight DTMF frequencies (a DFT at each,
i.e. Goertzel); when one low-group and one high-group tone stand out, a second pass finds each tone's true
frequency by locating the spectral peak on a fine grid (0.25 % steps, parabolic refinement) around it. A window
is a key when:

- each tone is within ±2.5 % of its nominal frequency (the receiver criteria: accept ±1.5 %, reject ±3.5 %);
- each tone is at least -30 dBm0 (criteria: operate down to -25 dBm0);
- the twist, high-group level minus low-group level, is within -9 ... +5 dB (criteria: -8 ... +4 dB);
- the two tones carry at least 75 % of the window's energy (criteria: S/N down to 15 dB; speech spreads its
  energy over many harmonics and formants, so it fails this test);

and a key is reported when two consecutive windows agree (tones of 40 ms or more), once, until two windows
without it (the pause between key presses).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asr.audio import SAMPLE_RATE

__all__ = ["DtmfDetector", "Detection", "InbandDigits", "detect_digits", "LOW_TONES", "HIGH_TONES", "DBM0_AMPLITUDE"]

LOW_TONES = (697.0, 770.0, 852.0, 941.0)
HIGH_TONES = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = ("123A", "456B", "789C", "*0#D")
#: Peak amplitude of a 0 dBm0 sine in 16-bit linear PCM (G.711: a full-scale sine is +3.17 dBm0).
DBM0_AMPLITUDE = 22700.0

WINDOW = 160
HOP = 80
_FINE_STEP = 0.0025
_FINE_SPAN = 20  # grid points each side: ±5 %


def _basis(freqs: np.ndarray) -> np.ndarray:
    n = np.arange(WINDOW)
    return np.exp(-2j * np.pi * np.outer(freqs, n) / SAMPLE_RATE)


@dataclass(frozen=True)
class Detection:
    digit: str
    t_ms: int  # start of the first window in which the key was seen


class DtmfDetector:
    """Streaming detector: `feed()` PCM16 of any length, get the keys that started."""

    def __init__(self, max_offset: float = 0.025, min_dbm0: float = -30.0, twist_db: tuple[float, float] = (-9.0, 5.0),
                 min_tone_fraction: float = 0.75) -> None:
        self.max_offset = max_offset
        self.min_amp = DBM0_AMPLITUDE * 10 ** (min_dbm0 / 20)
        self.twist_db = twist_db
        self.min_fraction = min_tone_fraction
        self._win = np.hanning(WINDOW + 2)[1:-1]
        self._wsum = float(self._win.sum())
        self._w2sum = float((self._win**2).sum())
        self._tones = np.array(LOW_TONES + HIGH_TONES)
        self._coarse = _basis(self._tones)
        self._grid = np.arange(-_FINE_SPAN, _FINE_SPAN + 1) * _FINE_STEP
        self._fine = [_basis(f * (1 + self._grid)) for f in self._tones]
        self._buf = np.zeros(0, dtype=np.float64)
        self._pos = 0  # sample index of the start of _buf
        self._last: str | None = None  # key of the previous window
        self._current: str | None = None  # key being held
        self._misses = 0

    def _amplitude(self, spec: np.ndarray) -> np.ndarray:
        amplitude: np.ndarray = 2.0 * np.abs(spec) / self._wsum
        return amplitude

    def _fine_tone(self, index: int, xw: np.ndarray) -> tuple[float, float]:
        """(relative offset from the nominal frequency, amplitude) of the tone near tone `index`."""
        power = np.abs(self._fine[index] @ xw) ** 2
        k = int(np.argmax(power))
        offset = self._grid[k]
        if 0 < k < len(power) - 1:
            a, b, c = np.log(power[k - 1] + 1e-12), np.log(power[k] + 1e-12), np.log(power[k + 1] + 1e-12)
            denom = a - 2 * b + c
            if denom < 0:
                offset += 0.5 * (a - c) / denom * _FINE_STEP
        return float(offset), float(2.0 * np.sqrt(power[k]) / self._wsum)

    def classify(self, window: np.ndarray) -> str | None:
        """The key in one 160-sample window, or None."""
        return self.classify_many(window[None, :])[0]

    def classify_many(self, windows: np.ndarray) -> list[str | None]:
        """The key in each row of a (K, 160) array of windows."""
        xw = windows * self._win
        energy = np.einsum("ij,ij->i", xw, xw)
        amp = self._amplitude(xw @ self._coarse.T)
        lo = np.argmax(amp[:, :4], axis=1)
        hi = 4 + np.argmax(amp[:, 4:], axis=1)
        rows = np.arange(len(windows))
        strong = (amp[rows, lo] >= self.min_amp * 0.5) & (amp[rows, hi] >= self.min_amp * 0.5) & (energy > 0)
        out: list[str | None] = [None] * len(windows)
        for i in np.nonzero(strong)[0]:
            out[i] = self._verify(xw[i], float(energy[i]), int(lo[i]), int(hi[i]))
        return out

    def _verify(self, xw: np.ndarray, energy: float, lo: int, hi: int) -> str | None:
        off_lo, a_lo = self._fine_tone(lo, xw)
        off_hi, a_hi = self._fine_tone(hi, xw)
        if abs(off_lo) > self.max_offset or abs(off_hi) > self.max_offset:
            return None
        if a_lo < self.min_amp or a_hi < self.min_amp:
            return None
        twist = 20 * np.log10(a_hi / a_lo)
        if not self.twist_db[0] <= twist <= self.twist_db[1]:
            return None
        tone_energy = (a_lo**2 + a_hi**2) / 2 * self._w2sum
        if tone_energy / energy < self.min_fraction:
            return None
        return KEYS[lo][hi - 4]

    def feed(self, pcm: bytes) -> list[Detection]:
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        self._buf = np.concatenate([self._buf, samples])
        count = (len(self._buf) - WINDOW) // HOP + 1 if len(self._buf) >= WINDOW else 0
        if count <= 0:
            return []
        windows = np.lib.stride_tricks.sliding_window_view(self._buf, WINDOW)[::HOP][:count]
        keys = self.classify_many(windows)
        found: list[Detection] = []
        for key in keys:
            start = self._pos
            self._pos += HOP
            if key is not None and key == self._last and key != self._current:
                self._current = key
                self._misses = 0
                found.append(Detection(key, (start - HOP) * 1000 // SAMPLE_RATE))
            elif key == self._current and key is not None:
                self._misses = 0
            elif self._current is not None:
                self._misses += 1
                if self._misses >= 2:
                    self._current = None
            self._last = key
        self._buf = self._buf[count * HOP :]
        return found


class InbandDigits:
    """The detector as a stream of keys, one 20 ms frame at a time: each key once, when it is recognised (the
    media layer's `DigitDetector`)."""

    def __init__(self) -> None:
        self._detector = DtmfDetector()

    def process(self, frame: bytes) -> list[str]:
        return [d.digit for d in self._detector.feed(frame)]


def detect_digits(pcm: bytes) -> list[Detection]:
    """All keys in a recording (8 kHz PCM16)."""
    return DtmfDetector().feed(pcm)
