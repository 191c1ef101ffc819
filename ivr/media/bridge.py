"""The media bridge of a B2BUA: relay 20 ms frames between a caller and an operator until one of them hangs up.

Each leg runs its own lock-step `exchange()` in a task, paced by its own RTP clock, and hands what it heard to
the other leg through a small queue. Frames are decoded PCM16, so a PCMU leg talks to a PCMA leg for free and the
conversation can be recorded. The legs cannot drift apart: when one side runs ahead its queue overflows and the
oldest frame is dropped; when a queue is empty the other side plays silence for that frame. Keys (RFC 4733) go
across out of band when the other leg can send them (RFC 4733 on a SIP leg that negotiated telephone-event). When
either side hangs up (CallerHungUp) the other is hung up.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from asr.audio import FRAME_MS
from ivr.channel.base import CallerHungUp, Channel
from ivr.media.recording import RecordingWriter

__all__ = ["BridgeResult", "bridge", "recording_paths"]

logger = logging.getLogger(__name__)

QUEUE_FRAMES = 3  # 60 ms: how far one leg may run ahead before its oldest frame is dropped
_DELAY_BUCKETS = 500  # 1 ms buckets of relay delay; longer delays count in the last one


@dataclass(frozen=True)
class BridgeResult:
    """How the bridged call ended. Delays are from a frame leaving one leg's jitter buffer to its being sent on the
    other leg; `dropped` frames were discarded by a leg running ahead, `silence_inserted` covered a late one."""

    ended_by: str  # "caller" | "operator"
    talk_ms: int
    frames_relayed: int
    dropped: int = 0
    silence_inserted: int = 0
    digits_forwarded: int = 0  # keys passed on as RFC 4733 events (both ways)
    delay_p50_ms: float = 0.0
    delay_p95_ms: float = 0.0


def recording_paths(recording: Path) -> tuple[Path, Path]:
    """The two mono WAVs of a bridged call recorded as `recording`: NAME.caller.wav and NAME.operator.wav."""
    return (recording.with_name(recording.stem + ".caller.wav"),
            recording.with_name(recording.stem + ".operator.wav"))


class _Stats:
    def __init__(self) -> None:
        self.relayed = 0
        self.dropped = 0
        self.inserted = 0
        self.digits = 0
        self.delays = [0] * _DELAY_BUCKETS

    def percentile(self, q: float) -> float:
        total = sum(self.delays)
        if not total:
            return 0.0
        seen = 0
        for ms, count in enumerate(self.delays):
            seen += count
            if seen >= q * total:
                return float(ms)
        return float(_DELAY_BUCKETS - 1)


class _Leg:
    """One side of the bridge: sends what the other side heard, passes on what this side hears."""

    def __init__(self, channel: Channel, peer: Channel, inbox: deque[tuple[bytes, float]],
                 outbox: deque[tuple[bytes, float]], stats: _Stats, writer: RecordingWriter | None) -> None:
        self.channel, self.peer, self.inbox, self.outbox = channel, peer, inbox, outbox
        self.stats, self.writer = stats, writer
        self.frames = 0

    async def run(self) -> None:
        stats, inbox, outbox = self.stats, self.inbox, self.outbox
        while True:
            if inbox:
                out: bytes | None
                out, heard_at = inbox.popleft()
                stats.relayed += 1
            else:
                out, heard_at = None, 0.0
                stats.inserted += 1
            inbound = await self.channel.exchange(out)  # returns after the tick that sent `out`
            now = time.perf_counter()
            if out is not None:
                stats.delays[min(int((now - heard_at) * 1000), _DELAY_BUCKETS - 1)] += 1
            self.frames += 1
            if len(outbox) == outbox.maxlen:
                stats.dropped += 1
            outbox.append((inbound.audio, now))
            if inbound.digits:
                stats.digits += sum(self.peer.send_digit(d) for d in inbound.digits)
            if self.writer is not None:
                self.writer.write(inbound.audio)


async def bridge(caller: Channel, operator: Channel, *, recording: Path | None = None) -> BridgeResult:
    """Relay audio both ways until one side hangs up, then hang up the other.

    With `recording`, what each side says is written as it arrives to two mono WAVs (`recording_paths`).
    """
    to_operator: deque[tuple[bytes, float]] = deque(maxlen=QUEUE_FRAMES)
    to_caller: deque[tuple[bytes, float]] = deque(maxlen=QUEUE_FRAMES)
    stats = _Stats()
    writers = [RecordingWriter(p) for p in recording_paths(recording)] if recording is not None else [None, None]
    legs = (_Leg(caller, operator, to_caller, to_operator, stats, writers[0]),
            _Leg(operator, caller, to_operator, to_caller, stats, writers[1]))
    tasks = [asyncio.ensure_future(leg.run()) for leg in legs]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for writer in writers:
            if writer is not None:
                writer.close()
    first = tasks[0] if tasks[0] in done else tasks[1]
    ended_by = "caller" if first is tasks[0] else "operator"
    other = operator if ended_by == "caller" else caller
    await other.hangup()
    error = first.exception()
    if error is not None and not isinstance(error, CallerHungUp):
        await (caller if ended_by == "caller" else operator).hangup()
        raise error
    result = BridgeResult(ended_by=ended_by, talk_ms=legs[0].frames * FRAME_MS, frames_relayed=stats.relayed,
                          dropped=stats.dropped, silence_inserted=stats.inserted, digits_forwarded=stats.digits,
                          delay_p50_ms=stats.percentile(0.5), delay_p95_ms=stats.percentile(0.95))
    logger.info("bridge %s <-> %s ended by the %s after %d ms (%d frames relayed, %d dropped, %d silence)",
                caller.info.call_id, operator.info.call_id, ended_by, result.talk_ms, result.frames_relayed,
                result.dropped, result.silence_inserted)
    return result
