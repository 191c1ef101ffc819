"""One 20 ms media clock shared by every call of the process.

All RTP sessions are ticked from the same timer, scheduled on absolute deadlines (no drift), so N calls cost one
timer wake-up per 20 ms instead of N. The clock records how late each tick fired, which is the RTP send jitter,
and counts what a blocked event loop cost the calls: late ticks, stalls and the ticks skipped after a stall (each
one a 20 ms frame that no call sent or played out).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ivr.lograte import RateLimitedLog

__all__ = ["MediaClock", "TICK_SECONDS"]

logger = logging.getLogger(__name__)
TICK_SECONDS = 0.020


class MediaClock:
    """Calls every subscriber once per tick; runs only while it has subscribers."""

    def __init__(self, interval: float = TICK_SECONDS) -> None:
        self.interval = interval
        self._subscribers: dict[int, Callable[[], None]] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._next = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        #: lateness of each tick in seconds (kept for the last `keep` ticks), for jitter figures
        self.lateness: list[float] = []
        #: how long each tick took to serve every session (the last packet of a tick goes out this much later)
        self.durations: list[float] = []
        self.keep = 15000
        self.ticks = 0
        #: ticks that fired after the next one was already due (a packet sent late)
        self.late_ticks = 0
        #: ticks more than 5 intervals late (the loop was blocked); the ticks missed meanwhile are skipped
        self.stalls = 0
        #: ticks skipped after stalls: every call lost that many 20 ms frames each way
        self.missed_ticks = 0
        #: the worst lateness seen, in seconds
        self.max_lateness = 0.0
        self._log = RateLimitedLog(logger)  # stalls and failing sessions: a line every 10 s at most

    def subscribe(self, key: int, callback: Callable[[], None]) -> None:
        self._subscribers[key] = callback
        if self._handle is None:
            self._loop = asyncio.get_running_loop()
            self._next = self._loop.time() + self.interval
            self._handle = self._loop.call_at(self._next, self._tick)

    def unsubscribe(self, key: int) -> None:
        self._subscribers.pop(key, None)
        if not self._subscribers and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    @property
    def running(self) -> bool:
        return self._handle is not None

    def __len__(self) -> int:
        return len(self._subscribers)

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        late = now - self._next
        self.ticks += 1
        if len(self.lateness) >= self.keep:
            del self.lateness[: self.keep // 2]
            del self.durations[: self.keep // 2]
        self.lateness.append(late)
        self.max_lateness = max(self.max_lateness, late)
        if late > self.interval:
            self.late_ticks += 1
        if late > 5 * self.interval:  # the loop was stalled: skip the missed ticks rather than burst
            self.stalls += 1
            self.missed_ticks += int(late / self.interval)
            self._log("stall", logging.WARNING, "media clock stalled for %.0f ms (%d stalls so far)", late * 1000,
                      self.stalls)
            self._next = now
        for callback in list(self._subscribers.values()):
            try:
                callback()
            except Exception as exc:  # one broken session must not stop the others, nor flood the log
                self._log(("tick", type(exc).__name__), logging.ERROR, "media tick failed: %s", exc, exc_info=True)
        self.durations.append(self._loop.time() - now)
        self._next += self.interval
        if self._subscribers:
            self._handle = self._loop.call_at(self._next, self._tick)
        else:
            self._handle = None
