"""Receive jitter buffer: reorders RTP audio by timestamp and plays it out 160 samples (20 ms) at a time.

Packets may carry any number of samples (SIPp's PCMA capture uses 30 ms); playout works on the sample timeline,
so packet size and frame size need not match. Late packets are dropped, gaps become silence, an SSRC change or a
timestamp jump restarts the buffer, and the depth is bounded so a fast sender cannot make the delay grow.
"""
from __future__ import annotations

from dataclasses import dataclass

from asr.audio import FRAME_SAMPLES

__all__ = ["JitterBuffer", "JitterStats"]

_WRAP = 1 << 32


@dataclass
class JitterStats:
    received: int = 0
    late: int = 0
    duplicate: int = 0
    resets: int = 0
    concealed_frames: int = 0
    overflow_dropped: int = 0


class JitterBuffer:
    """`push()` decoded packets as they arrive, `pop()` one 20 ms frame per clock tick (None before playout)."""

    def __init__(self, prefill_frames: int = 2, max_frames: int = 15, resync_samples: int = 8000 * 2) -> None:
        self.prefill = prefill_frames * FRAME_SAMPLES
        self.max_samples = max_frames * FRAME_SAMPLES
        self.resync = resync_samples
        self.stats = JitterStats()
        self._packets: dict[int, bytes] = {}  # unwrapped timestamp -> PCM16
        self._ssrc: int | None = None
        self._base = 0  # RTP timestamp that maps to unwrapped 0
        self._next: int | None = None  # unwrapped timestamp of the next frame to play
        self._end = 0  # unwrapped end of the newest packet
        self._playing = False

    def _unwrap(self, ts: int) -> int:
        ref = self._next if self._next is not None else 0
        delta = (ts - self._base - ref) % _WRAP
        if delta >= _WRAP // 2:
            delta -= _WRAP
        return ref + delta

    def _reset(self, ssrc: int, ts: int) -> None:
        self._packets.clear()
        self._ssrc = ssrc
        self._base = ts
        self._next = 0
        self._end = 0
        self._playing = False

    def push(self, ssrc: int, timestamp: int, pcm: bytes) -> None:
        self.stats.received += 1
        if self._ssrc != ssrc or self._next is None:
            if self._ssrc is not None:
                self.stats.resets += 1
            self._reset(ssrc, timestamp)
        t = self._unwrap(timestamp)
        n = len(pcm) // 2
        assert self._next is not None
        if t + n <= self._next:
            self.stats.late += 1
            return
        if abs(t - self._next) > self.resync:
            self.stats.resets += 1
            self._reset(ssrc, timestamp)
            t = 0
        if t in self._packets:
            self.stats.duplicate += 1
            return
        self._packets[t] = pcm
        self._end = max(self._end, t + n)
        if not self._playing and self._end - self._next >= self.prefill:
            self._playing = True
        if self._end - self._next > self.max_samples:  # sender runs fast or burst: drop the oldest audio
            skip = self._end - self._next - self.max_samples
            self._next += skip
            self.stats.overflow_dropped += skip // FRAME_SAMPLES
            self._drop_before(self._next)

    def _drop_before(self, t: int) -> None:
        for key in [k for k, v in self._packets.items() if k + len(v) // 2 <= t]:
            del self._packets[key]

    @property
    def depth_samples(self) -> int:
        return 0 if self._next is None else max(self._end - self._next, 0)

    def pop(self) -> bytes | None:
        """The next 20 ms of PCM16, or None when nothing is playing (not started, or ran dry)."""
        if not self._playing or self._next is None:
            return None
        start, stop = self._next, self._next + FRAME_SAMPLES
        exact = self._packets.get(start)
        if exact is not None and len(exact) == FRAME_SAMPLES * 2:  # the usual case: one 20 ms packet per frame
            del self._packets[start]
            self._next = stop
            if self._end <= self._next:
                self._playing = False
            return exact
        out = bytearray(FRAME_SAMPLES * 2)
        filled = 0
        for t, pcm in self._packets.items():
            n = len(pcm) // 2
            if t >= stop or t + n <= start:
                continue
            a, b = max(t, start), min(t + n, stop)
            out[(a - start) * 2 : (b - start) * 2] = pcm[(a - t) * 2 : (b - t) * 2]
            filled += b - a
        self._next = stop
        self._drop_before(stop)
        if filled < FRAME_SAMPLES:
            self.stats.concealed_frames += 1
        if self._end <= self._next:  # ran dry: wait for the prefill again
            self._playing = False
        return bytes(out)
