"""Crash-safe recording: a WAV written frame by frame as the caller speaks.

The header is written first with a provisional length and fixed on close; `repair()` fixes the header of a
file left by a crash, so nothing the caller said is lost.
"""
from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

from asr.audio import SAMPLE_RATE

__all__ = ["RecordingWriter", "repair"]

HEADER_BYTES = 44


def _header(data_bytes: int, rate: int = SAMPLE_RATE) -> bytes:
    return (
        b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data" + struct.pack("<I", data_bytes)
    )


class RecordingWriter:
    """Appends PCM16 frames to a WAV file, flushing every `flush_every` frames."""

    def __init__(self, path: Path, flush_every: int = 25) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "wb")
        self._f.write(_header(0))
        self._bytes = 0
        self._since_flush = 0
        self._flush_every = flush_every
        self._sha = hashlib.sha256()

    def write(self, pcm: bytes) -> None:
        self._f.write(pcm)
        self._sha.update(pcm)
        self._bytes += len(pcm)
        self._since_flush += 1
        if self._since_flush >= self._flush_every:
            self._f.flush()
            self._since_flush = 0

    @property
    def duration_ms(self) -> int:
        return self._bytes * 1000 // (SAMPLE_RATE * 2)

    def close(self) -> str:
        """Finish the file; returns the SHA-256 of the whole WAV file."""
        if not self._f.closed:
            self._f.seek(0)
            self._f.write(_header(self._bytes))
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def repair(path: Path) -> int:
    """Fix the header of a WAV whose writer died; returns the audio length in bytes."""
    size = path.stat().st_size
    data = max(0, size - HEADER_BYTES)
    data -= data % 2
    with open(path, "r+b") as f:
        f.write(_header(data))
    return data
