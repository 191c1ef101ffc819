"""Crash-safe recording: a WAV written frame by frame as the caller speaks.

The header is written first with a provisional length and fixed on close; `repair()` fixes the header of a
file left by a crash (or cut short by a full disk), so nothing the caller said is lost.
"""
from __future__ import annotations

import errno
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
    """Appends PCM16 frames to a new WAV file, flushing every `flush_every` frames.

    The file is created exclusively: a name that exists already raises FileExistsError, so no recording is ever
    overwritten. The header is on disk before the first frame. A write that fails (a full disk) raises its
    OSError once; the frames after it are dropped and `close()` keeps the audio that reached the disk.
    """

    def __init__(self, path: Path, flush_every: int = 25) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._f = open(path, "xb")
        except FileExistsError:
            raise FileExistsError(errno.EEXIST, "a recording is never overwritten", str(path)) from None
        self._bytes = 0
        self._since_flush = 0
        self._flush_every = flush_every
        self.error: OSError | None = None
        try:
            self._f.write(_header(0))
            self._f.flush()
        except OSError as exc:
            self._fail(exc)
            path.unlink(missing_ok=True)  # created above, holding no audio
            raise

    def write(self, pcm: bytes) -> None:
        if self.error is not None:
            return
        try:
            self._f.write(pcm)
            self._bytes += len(pcm)
            self._since_flush += 1
            if self._since_flush >= self._flush_every:
                self._f.flush()
                self._since_flush = 0
        except OSError as exc:
            self._fail(exc)
            raise

    def _fail(self, exc: OSError) -> None:
        """Stop writing: what is on disk stays, the buffered frames are lost."""
        self.error = exc
        try:
            self._f.close()
        except OSError:
            pass  # the buffer could not be written either
        self._bytes = _audio_bytes(self.path)

    @property
    def duration_ms(self) -> int:
        return self._bytes * 1000 // (SAMPLE_RATE * 2)

    def close(self) -> str:
        """Finish the file; returns the SHA-256 of the whole WAV file."""
        if self.error is not None:
            if self.path.is_file():
                self._bytes = repair(self.path)
        elif not self._f.closed:
            try:
                self._f.seek(0)
                self._f.write(_header(self._bytes))
                self._f.flush()
                os.fsync(self._f.fileno())
                self._f.close()
            except OSError as exc:
                self._fail(exc)
                return self.close()
        return hashlib.sha256(self.path.read_bytes()).hexdigest() if self.path.is_file() else ""


def _audio_bytes(path: Path) -> int:
    try:
        data = max(0, path.stat().st_size - HEADER_BYTES)
    except OSError:
        return 0
    return data - data % 2


def repair(path: Path) -> int:
    """Fix the header of a WAV whose writer died; returns the audio length in bytes."""
    data = _audio_bytes(path)
    with open(path, "r+b") as f:
        f.write(_header(data))
    return data
