"""Rendered speech made into telephone prompts: band-limited, edges trimmed, levelled on active speech.

Every voice's output goes through the same steps, so prompts of one style sound equally loud whatever their
length or pauses: the level is the RMS of the 20 ms frames that carry speech (a simplified ITU-T P.56 active
speech level), not of the whole file, and peaks are rounded off by a soft limiter instead of clipping.
"""
from __future__ import annotations

import numpy as np

from asr.audio import SAMPLE_RATE

__all__ = ["BAND_HZ", "telephone_band", "trim_silence", "fade_edges", "speech_level_dbfs", "level_pcm", "shape"]

BAND_HZ = (300.0, 3400.0)
"""The telephone speech band (ITU-T G.712): energy outside it is wasted on the line or muddies small earpieces."""

EDGE_MS = 120  # digital silence before and after a rendered prompt
ONSET_MS = 10  # kept before the first and after the last sound above the trim threshold, faded
_FRAME = SAMPLE_RATE // 50  # 20 ms
_ACTIVE_BELOW_PEAK_DB = 30.0  # frames within this of the loudest frame count as speech
_FLOOR_DBFS = -60.0


def telephone_band(pcm: bytes, band: tuple[float, float] = BAND_HZ, edge_hz: float = 100.0) -> bytes:
    """Keep `band` (8 kHz PCM16): an FFT band-pass with raised-cosine skirts `edge_hz` wide, no ringing at DC."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if len(x) < 2:
        return pcm
    n = 1 << int(np.ceil(np.log2(len(x) + 2 * SAMPLE_RATE // 10)))  # padded: no wrap-around at the ends
    spectrum = np.fft.rfft(x, n)
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    lo, hi = band
    gain = np.clip((f - (lo - edge_hz)) / edge_hz, 0, 1) * np.clip(((hi + edge_hz) - f) / edge_hz, 0, 1)
    gain = 0.5 - 0.5 * np.cos(np.pi * gain)
    y = np.fft.irfft(spectrum * gain, n)[: len(x)]
    return np.clip(np.rint(y), -32768, 32767).astype("<i2").tobytes()


def trim_silence(pcm: bytes, threshold_dbfs: float = -45.0, keep_ms: int = ONSET_MS) -> bytes:
    """Cut leading and trailing silence, keeping `keep_ms` either side of the first and last sound."""
    x = np.frombuffer(pcm, dtype="<i2")
    if not len(x):
        return pcm
    loud = np.flatnonzero(np.abs(x.astype(np.int32)) > 32768 * 10 ** (threshold_dbfs / 20))
    if not len(loud):
        return b""
    keep = SAMPLE_RATE * keep_ms // 1000
    return x[max(0, loud[0] - keep): loud[-1] + 1 + keep].tobytes()


def fade_edges(pcm: bytes, ms: int = ONSET_MS // 2) -> bytes:
    """Raised-cosine fades of `ms` at both ends: audio that starts and ends at zero cannot click when joined."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    k = min(SAMPLE_RATE * ms // 1000, len(x) // 2)
    if k:
        ramp = np.sin(np.linspace(0, np.pi / 2, k, endpoint=False)) ** 2
        x[:k] *= ramp
        x[len(x) - k:] *= ramp[::-1]
    return np.rint(x).astype("<i2").tobytes()


def speech_level_dbfs(pcm: bytes) -> float:
    """Active speech level: RMS (dBFS) of the 20 ms frames within 30 dB of the loudest one (pauses left out)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0
    n = len(x) // _FRAME
    if n == 0:
        return _FLOOR_DBFS
    power = np.mean(x[: n * _FRAME].reshape(n, _FRAME) ** 2, axis=1)
    db = 10 * np.log10(np.maximum(power, 1e-12))
    active = db > max(float(db.max()) - _ACTIVE_BELOW_PEAK_DB, _FLOOR_DBFS)
    if not active.any():
        return _FLOOR_DBFS
    return float(10 * np.log10(np.mean(power[active])))


def level_pcm(pcm: bytes, target_dbfs: float, knee: float = 0.5) -> bytes:
    """Bring the active speech level to `target_dbfs`; peaks above `knee` (of full scale) are rounded off softly.

    A loud target (the elderly style) reached by gain alone would clip the peaks; the soft knee is what a
    telephone-prompt limiter does. It takes some level, so the gain is corrected once after it.
    """
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0
    if not len(x) or not np.any(x):
        return pcm
    gain = 10 ** ((target_dbfs - speech_level_dbfs(pcm)) / 20)
    y = _limit(x * gain, knee)
    for _ in range(2):
        shortfall = target_dbfs - speech_level_dbfs(_pcm(y))
        if abs(shortfall) < 0.1:
            break
        gain *= 10 ** (shortfall / 20)
        y = _limit(x * gain, knee)
    return _pcm(y)


def shape(pcm: bytes, target_dbfs: float) -> bytes:
    """A voice's 8 kHz output as a prompt: telephone band, levelled, its sound faded in and out between
    `EDGE_MS` of digital silence (so run-time splicing cuts it cleanly at the same -45 dBFS points)."""
    levelled = level_pcm(telephone_band(pcm), target_dbfs)
    sound = trim_silence(levelled)
    if not sound:
        return pcm
    pad = bytes(2 * (SAMPLE_RATE * EDGE_MS // 1000))
    return level_pcm(pad + fade_edges(sound) + pad, target_dbfs)  # again: the level as framed in the file


def _limit(y: np.ndarray, knee: float) -> np.ndarray:
    y = y.copy()
    over = np.abs(y) > knee
    head = 0.97 - knee
    y[over] = np.sign(y[over]) * (knee + head * np.tanh((np.abs(y[over]) - knee) / head))
    return y


def _pcm(y: np.ndarray) -> bytes:
    return np.rint(y * 32768.0).clip(-32768, 32767).astype("<i2").tobytes()
