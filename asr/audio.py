"""Telephone audio format used everywhere in the system, and WAV input/output.

Inside the system audio is 8 kHz mono signed 16-bit little-endian PCM in 20 ms frames (160 samples, 320 bytes).
"""
from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from asr.errors import AudioFormatError

__all__ = [
    "SAMPLE_RATE", "FRAME_MS", "FRAME_SAMPLES", "FRAME_BYTES", "SILENCE_FRAME",
    "read_wav", "write_wav", "write_ulaw_wav", "frames", "duration_ms", "resample_linear",
]

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * 2
SILENCE_FRAME = bytes(FRAME_BYTES)


WAVE_FORMAT_MULAW = 7


def _ulaw_wav(p: Path) -> tuple[int, int, bytes] | None:
    """(channels, rate, PCM16) of a G.711 µ-law WAV (as PBXs record calls), None for any other file."""
    with p.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        fmt: tuple[int, int, int, int] | None = None
        while len(chunk := f.read(8)) == 8:
            cid, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if cid == b"fmt ":
                body = f.read(size + size % 2)
                fmt = (int.from_bytes(body[0:2], "little"), int.from_bytes(body[2:4], "little"),
                       int.from_bytes(body[4:8], "little"), int.from_bytes(body[14:16], "little"))
                if fmt[0] != WAVE_FORMAT_MULAW:
                    return None
            elif cid == b"data" and fmt is not None:
                u = ~np.frombuffer(f.read(size), dtype=np.uint8).astype(np.int32) & 0xFF
                t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
                return fmt[1], fmt[2], np.where(u & 0x80, 0x84 - t, t - 0x84).astype("<i2").tobytes()
            else:
                f.seek(size + size % 2, 1)
    return None


def read_wav(path: str | Path) -> bytes:
    """Read a WAV file (PCM16, or G.711 µ-law) as 8 kHz mono PCM16.

    Stereo is mixed down and other rates are resampled. Raises AudioFormatError naming the file and the problem.
    """
    p = Path(path)
    if not p.is_file():
        raise AudioFormatError(f"{p}: no such file")
    ulaw = _ulaw_wav(p)
    if ulaw is not None:
        channels, rate, data = ulaw
        return _to_telephone(p, channels, rate, data)
    try:
        with wave.open(str(p), "rb") as w:
            channels, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            data = w.readframes(n)
    except (wave.Error, EOFError) as exc:
        raise AudioFormatError(f"{p}: not a readable WAV file ({exc})") from None
    if width != 2:
        raise AudioFormatError(f"{p}: {8 * width}-bit samples; only 16-bit PCM (or G.711 µ-law) is supported")
    return _to_telephone(p, channels, rate, data)


def _to_telephone(p: Path, channels: int, rate: int, data: bytes) -> bytes:
    width = 2
    if len(data) < channels * width:
        raise AudioFormatError(f"{p}: the file holds no audio")
    samples = np.frombuffer(data[: len(data) - len(data) % (channels * 2)], dtype="<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype("<i2")
    if rate != SAMPLE_RATE:
        samples = resample_linear(samples, rate, SAMPLE_RATE)
    return samples.astype("<i2").tobytes()


def resample_linear(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample int16 samples (anti-aliased when going down); for files and prompts, not the ASR path."""
    if src_rate == dst_rate or len(samples) == 0:
        return samples
    x = samples.astype(np.float64)
    if dst_rate < src_rate:  # low-pass below the new Nyquist first, so nothing folds back
        cutoff = 0.45 * dst_rate / src_rate
        n = np.arange(-32, 33)
        h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(len(n), 6.0)
        x = np.convolve(x, h / h.sum(), mode="same")
    n_out = int(round(len(samples) * dst_rate / src_rate))
    x_old = np.arange(len(samples), dtype=np.float64) / src_rate
    x_new = np.arange(n_out, dtype=np.float64) / dst_rate
    out = np.interp(x_new, x_old, x)
    return np.clip(np.round(out), -32768, 32767).astype("<i2")


def write_ulaw_wav(path: str | Path, ulaw: bytes, rate: int = SAMPLE_RATE) -> None:
    """Write G.711 µ-law bytes (mono) as a WAV file (format 7, 8 bits a sample): half the size of PCM16."""
    fmt = ((WAVE_FORMAT_MULAW).to_bytes(2, "little") + (1).to_bytes(2, "little") + rate.to_bytes(4, "little")
           + rate.to_bytes(4, "little") + (1).to_bytes(2, "little") + (8).to_bytes(2, "little") + bytes(2))
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt + b"data" + len(ulaw).to_bytes(4, "little") + ulaw
    Path(path).write_bytes(b"RIFF" + len(body + bytes(len(ulaw) % 2)).to_bytes(4, "little") + body
                           + bytes(len(ulaw) % 2))


def write_wav(path: str | Path, pcm: bytes, rate: int = SAMPLE_RATE) -> None:
    """Write mono PCM16 to a WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def frames(pcm: bytes) -> Iterator[bytes]:
    """Cut PCM into 20 ms frames; the last one is padded with silence."""
    for i in range(0, len(pcm), FRAME_BYTES):
        chunk = pcm[i : i + FRAME_BYTES]
        yield chunk if len(chunk) == FRAME_BYTES else chunk + bytes(FRAME_BYTES - len(chunk))


def duration_ms(pcm: bytes) -> int:
    return len(pcm) * 1000 // (SAMPLE_RATE * 2)
