"""Live recognition load: what each call into a recogniser cost and how late it was, and admission by that load.

`DecodeStats` keeps the decode jobs of the last minute. The lag of a job is counted from the arrival of the newest
frame it decoded to its end (what a Vosk server's per-chunk reply time measures) and, beside it, from the oldest frame
(so batching cannot hide a backlog). The lag figures are those of chunks inside utterances; an utterance's last job
(its final result) is counted apart, from the end of the utterance: callers who stop together queue their finals one
behind another (each is a lattice finalisation, ~55 ms of CPU), which says nothing of whether the decoders keep up.

`Admission` decides per listening step (a menu's answer, a recorded complaint) whether live recognition takes it:
a step holds a `Reservation` while it listens. The number of reservations the node carries adapts to the lag seen:
when the p95 lag of the last seconds passes `soft_lag_s`, the limit drops below what is held (and not again until
the steps held fit under it: a step runs to its end, so the lag answers a cut only as steps finish); when the node is
at its limit with the lag under three quarters of that (`RISE_BELOW`), it rises by one. Priority steps (elderly callers,
urgent or spoken-question steps) may go `reserve` over the limit, so they keep speech longest. A step refused is
served by keys, and what it records is transcribed after the call.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["DecodeJob", "DecodeStats", "LoadSnapshot", "Admission", "Reservation"]


@dataclass(frozen=True)
class DecodeJob:
    """One call into a recogniser (times from `time.monotonic`)."""
    stream: int
    audio_ms: int
    oldest: float  # arrival of the oldest frame in the chunk
    newest: float  # arrival of the newest frame
    started: float
    ended: float
    cpu_s: float  # the worker thread's CPU time for the call
    final: bool  # the utterance's last job (its final result)

    @property
    def lag_s(self) -> float:
        return self.ended - self.newest

    @property
    def lag_oldest_s(self) -> float:
        return self.ended - self.oldest


@dataclass(frozen=True)
class LoadSnapshot:
    window_s: float
    jobs: int
    streams: int  # utterance streams open now
    lag_p95_s: float  # newest frame -> decoded, chunks inside utterances over the window (0 without any)
    lag_oldest_p95_s: float
    lag_max_s: float
    final_p95_s: float  # last frame of an utterance -> its final result
    audio_s: float  # decoded in the window
    cpu_s: float

    @property
    def cpu_per_audio_s(self) -> float:
        return self.cpu_s / self.audio_s if self.audio_s else 0.0


class DecodeStats:
    """Thread-safe record of recent decode jobs and running totals."""

    def __init__(self, keep_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.keep_s = keep_s
        self._clock = clock
        self._jobs: deque[DecodeJob] = deque()
        self._lock = threading.Lock()
        self.streams = 0
        self.total_jobs = 0
        self.total_audio_s = 0.0
        self.total_cpu_s = 0.0
        self.observers: list[Callable[[DecodeJob], None]] = []

    def opened(self) -> None:
        with self._lock:
            self.streams += 1

    def closed(self) -> None:
        with self._lock:
            self.streams -= 1

    def record(self, job: DecodeJob) -> None:
        with self._lock:
            self._jobs.append(job)
            while self._jobs and self._jobs[0].ended < job.ended - self.keep_s:
                self._jobs.popleft()
            self.total_jobs += 1
            self.total_audio_s += job.audio_ms / 1000
            self.total_cpu_s += job.cpu_s
        for observe in self.observers:
            observe(job)

    def snapshot(self, window_s: float = 10.0) -> LoadSnapshot:
        now = self._clock()
        with self._lock:
            jobs = [j for j in self._jobs if j.ended >= now - window_s]
            streams = self.streams
        if not jobs:
            return LoadSnapshot(window_s, 0, streams, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        chunks = [j for j in jobs if not j.final]
        lag = np.array([j.lag_s for j in chunks] or [0.0])
        oldest = np.array([j.lag_oldest_s for j in chunks] or [0.0])
        finals = [j.lag_s for j in jobs if j.final]
        return LoadSnapshot(window_s, len(jobs), streams, float(np.percentile(lag, 95)),
                            float(np.percentile(oldest, 95)), float(lag.max()),
                            float(np.percentile(finals, 95)) if finals else 0.0,
                            sum(j.audio_ms for j in jobs) / 1000, sum(j.cpu_s for j in jobs))


class Reservation:
    """A listening step's place in live recognition; `release()` (or leaving the `with`) gives it back."""

    def __init__(self, admission: Admission, priority: bool) -> None:
        self._admission, self.priority, self._held = admission, priority, True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._admission._release()

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


RISE_BELOW = 0.75
"""The limit rises only while the p95 lag is under this share of `soft_lag_s` (decoding in 200 ms pieces keeps an
idle node's p95 lag at 0.15-0.25 s: under half of 0.3 s it never rose, and a node that held 8 streams shed 39 %)."""


class Admission:
    """Admits listening steps to live recognition while the decoders keep up (see the module's docstring)."""

    def __init__(self, stats: DecodeStats, *, initial: int = 4, minimum: int = 1, maximum: int = 256,
                 reserve: int = 2, soft_lag_s: float = 0.3, window_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stats, self.minimum, self.maximum, self.reserve = stats, minimum, maximum, reserve
        self.soft_lag_s, self.window_s, self._clock = soft_lag_s, window_s, clock
        self.limit = float(initial)
        self.held = 0
        self.admitted = 0
        self.shed = 0
        self.admitted_priority = 0
        self.shed_priority = 0
        self._lock = threading.Lock()
        self._last_down = self._last_up = -1e9

    def admit(self, priority: bool = False) -> Reservation | None:
        """A reservation when live recognition can take one more step (a priority step goes `reserve` further)."""
        with self._lock:
            self._adjust()
            if self.held < self.limit + (self.reserve if priority else 0):
                self.held += 1
                self.admitted += 1
                self.admitted_priority += priority
                return Reservation(self, priority)
            self.shed += 1
            self.shed_priority += priority
            return None

    def spare(self) -> bool:
        """Whether work that can wait (transcribing after the call) may use the decoders now: the lag is low and
        live steps leave room below the limit."""
        with self._lock:
            self._adjust()
            snap = self.stats.snapshot(self.window_s)
            return snap.lag_p95_s < self.soft_lag_s / 2 and self.held < self.limit

    def _release(self) -> None:
        with self._lock:
            self.held -= 1

    def _adjust(self) -> None:  # lock held
        now = self._clock()
        snap = self.stats.snapshot(self.window_s)
        if not snap.jobs:
            return
        if self.minimum == self.maximum:  # a fixed limit
            return
        if snap.lag_p95_s > self.soft_lag_s:
            # steps run to their end: while more are held than the last cut allows it has not taken effect yet, and
            # cutting again on the same lag would take the limit far below what the decoders can carry
            if self.held <= self.limit and now - self._last_down >= self.window_s / 2:
                self.limit = max(float(self.minimum), min(self.limit, float(self.held)) - 1)
                self._last_down = now
        elif (snap.lag_p95_s < self.soft_lag_s * RISE_BELOW and self.held >= self.limit
              and now - max(self._last_up, self._last_down) >= self.window_s):
            self.limit = min(float(self.maximum), self.limit + 1)
            self._last_up = now
