"""Decoding off the event loop: each utterance's audio reaches its recogniser in order, the most-behind first.

An `AsyncDecoder` is one utterance. Every live utterance is a stream of audio chunks that must reach its recogniser in order. A FIFO thread pool with a
task per utterance lets every stream fall behind together when the decoders are short of CPU, and hands a worker
200 ms at a time however much is waiting. Here a fixed set of worker threads (`workers`, one per core by default)
takes from a heap ordered by deadline (earliest first), and decodes everything that stream has queued in one step,
so a stream that fell behind catches up at once and a stream is never on two workers at once. A stream enters the
heap once it has `min_chunk_ms` queued, or when it is finished or cancelled. Its deadline is its oldest undecoded
chunk's end plus `lag_target_ms` (the lag a caller's partial results may have), or, once the utterance has ended,
the end plus `final_target_ms` if that is sooner: a caller waiting for the reply to what they said goes before a
stream whose chunk can still wait, not behind every stream that has a chunk queued.

The recogniser always gets the utterance in the same pieces, `min_chunk_ms` each and the rest at the end, however
late a step is: Kaldi's speaker adaptation weighs frames by what has been decoded so far at each call, so the pieces
change the transcript. With them fixed (and no dither, see `asr.kaldi_conf`) a busy node's transcript is the one the
same audio gets on an idle node.

Each call into a recogniser is reported as a `DecodeJob` (oldest and newest frame's arrival, start, end, thread CPU)
to `DecodeStats`, which the load governor and `/metrics` read.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from asr.audio import SAMPLE_RATE
from asr.engine import Engine, Recognizer
from asr.errors import DecoderClosedError
from asr.load import DecodeJob, DecodeStats
from asr.results import Partial, Transcript

__all__ = ["AsyncDecoder", "DecodeScheduler", "default_scheduler"]

log = logging.getLogger(__name__)

_BYTES_PER_MS = SAMPLE_RATE * 2 // 1000


@dataclass
class _Work:
    """What a worker took from a stream: the audio, its arrival span, and whether to finish after it."""
    pcm: bytes
    oldest: float
    newest: float
    final: bool
    cancelled: bool


class AsyncDecoder:
    """One utterance's audio, decoded in order off the event loop by the scheduler's workers.

    Create it on the event loop that awaits it; audio is sent on once `min_chunk_ms` of it is queued (default the
    scheduler's), so partial results come at most that much later.
    """

    def __init__(self, engine: Engine, phrases: Sequence[str] | None = None,
                 on_partial: Callable[[Partial], None] | None = None, scheduler: DecodeScheduler | None = None,
                 min_chunk_ms: int | None = None) -> None:
        self._scheduler = scheduler or default_scheduler()
        self._engine, self._phrases, self._on_partial = engine, phrases, on_partial
        self._loop = asyncio.get_running_loop()
        self.id = next(self._scheduler._ids)
        self._min_chunk = self._scheduler.min_chunk if min_chunk_ms is None else min_chunk_ms * _BYTES_PER_MS
        self._chunks: list[tuple[float, bytes]] = []  # (arrival, audio), undecoded
        self._queued_bytes = 0
        self._oldest = 0.0  # arrival (monotonic) of the oldest undecoded audio
        self._in_heap = False
        self._due = 0.0  # deadline of its heap entry
        self._running = False
        self._closing = False  # finish() or cancel() called: no more audio
        self._closed_at = 0.0  # when: the rest short of a chunk could not be decoded before
        self._cancelled = False
        self._done: asyncio.Future[Transcript | None] = self._loop.create_future()
        self._rec: Recognizer | None = None
        self.audio_ms = 0
        self._scheduler._opened()

    def feed(self, pcm: bytes) -> None:
        """Queue audio (8 kHz PCM16) for decoding; returns at once."""
        if self._closing:
            raise DecoderClosedError("AsyncDecoder.feed() after finish() or cancel()")
        self._scheduler._feed(self, pcm, time.monotonic())

    async def finish(self) -> Transcript:
        """Decode what is queued and return the final transcript."""
        if not self._closing:
            self._scheduler._close(self, cancel=False)
        result = await asyncio.shield(self._done)
        assert result is not None
        return result

    async def cancel(self) -> None:
        """Drop the audio not yet decoded; the recogniser goes back to the engine's pool."""
        if not self._closing:
            self._scheduler._close(self, cancel=True)
        await asyncio.gather(asyncio.shield(self._done), return_exceptions=True)

    # --- worker side (called by DecodeScheduler with its lock held, or on a worker thread) ---------------------

    def _take(self) -> _Work:
        """Every whole `min_chunk` queued (all of it once closing); the rest stays queued."""
        whole = self._queued_bytes
        if not self._closing and self._min_chunk:
            whole -= whole % self._min_chunk
        taken: list[bytes] = []
        newest, size = self._oldest, 0
        while self._chunks and size < whole:
            arrived, pcm = self._chunks.pop(0)
            if size + len(pcm) > whole:  # split: its tail waits for the next step
                self._chunks.insert(0, (arrived, pcm[whole - size:]))
                pcm = pcm[:whole - size]
            taken.append(pcm)
            newest, size = arrived, size + len(pcm)
        oldest = self._oldest
        if self._closing:  # the rest short of a chunk waited for the end of the utterance, not for a decoder
            newest = max(newest, self._closed_at)
            if size < self._min_chunk:
                oldest = max(oldest, self._closed_at)
        work = _Work(b"".join(taken), oldest, newest, self._closing, self._cancelled)
        self._queued_bytes -= size
        if self._chunks:
            self._oldest = self._chunks[0][0]
        return work

    def _run(self, work: _Work) -> tuple[Partial | None, Transcript | None]:
        partial = None
        if work.pcm and not work.cancelled:
            if self._rec is None:
                self._rec = self._engine.recognizer(self._phrases)
            step = self._min_chunk or len(work.pcm)
            for i in range(0, len(work.pcm), step):
                partial = self._rec.accept(work.pcm[i:i + step]) or partial
        if not work.final:
            return partial, None
        if self._rec is None:
            if work.cancelled:
                return None, None
            self._rec = self._engine.recognizer(self._phrases)
        result = self._rec.final()
        self._engine.release(self._rec)
        self._rec = None
        return None, (None if work.cancelled else result)


class DecodeScheduler:
    """Worker threads decoding the live streams, earliest deadline first. One per process: `default_scheduler()`."""

    def __init__(self, workers: int | None = None, min_chunk_ms: int = 200, stats: DecodeStats | None = None,
                 lag_target_ms: int = 500, final_target_ms: int = 300) -> None:
        self.workers = workers or (os.cpu_count() or 1)
        self.min_chunk = min_chunk_ms * _BYTES_PER_MS
        self.lag_target_s = lag_target_ms / 1000
        self.final_target_s = final_target_ms / 1000
        self.stats = stats or DecodeStats()
        self._heap: list[tuple[float, int, AsyncDecoder]] = []
        self._cv = threading.Condition()
        self._ids = itertools.count(1)
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def _opened(self) -> None:
        with self._cv:
            if not self._threads:
                self._start()
        self.stats.opened()

    def shutdown(self) -> None:
        """Stop the workers once the heap is empty (streams still open are not waited for)."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        for t in self._threads:
            t.join()
        self._threads.clear()
        self._stopping = False

    def _start(self) -> None:
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"asr-decode-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def _push(self, s: AsyncDecoder) -> None:  # lock held; a sooner deadline adds an entry, the later one goes stale
        if s._running:
            return
        due = self._deadline(s)
        if s._in_heap and due >= s._due:
            return
        s._in_heap, s._due = True, due
        heapq.heappush(self._heap, (due, s.id, s))
        self._cv.notify()

    def _deadline(self, s: AsyncDecoder) -> float:  # lock held
        due = s._oldest + s._min_chunk / (_BYTES_PER_MS * 1000) + self.lag_target_s if s._chunks else float("inf")
        if s._closing:
            due = min(due, s._closed_at + self.final_target_s)
        return due

    def _feed(self, s: AsyncDecoder, pcm: bytes, now: float) -> None:
        with self._cv:
            if not s._chunks:
                s._oldest = now
            s._chunks.append((now, pcm))
            s._queued_bytes += len(pcm)
            s.audio_ms += len(pcm) // _BYTES_PER_MS
            if s._queued_bytes >= s._min_chunk:
                self._push(s)

    def _close(self, s: AsyncDecoder, cancel: bool) -> None:
        with self._cv:
            s._closing = True
            s._closed_at = time.monotonic()
            if cancel:
                s._cancelled = True
                s._chunks.clear()
                s._queued_bytes = 0
            if not s._chunks:
                s._oldest = time.monotonic()
            self._push(s)

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._heap and not self._stopping:
                    self._cv.wait()
                if not self._heap:
                    return
                due, _, s = heapq.heappop(self._heap)
                if not s._in_heap or due != s._due:
                    continue  # stale: the stream was pushed again with a sooner deadline
                s._in_heap = False
                s._running = True
                work = s._take()
            started, cpu = time.monotonic(), time.thread_time()
            error: BaseException | None = None
            partial = result = None
            try:
                partial, result = s._run(work)
            except Exception as exc:  # a recogniser failure ends this stream only
                log.exception("decoding stream %d failed", s.id)
                error, work.final = exc, True
            ended = time.monotonic()
            self.stats.record(DecodeJob(s.id, len(work.pcm) // _BYTES_PER_MS, work.oldest, work.newest, started,
                                        ended, time.thread_time() - cpu, work.final))
            with self._cv:
                s._running = False
                if work.final:
                    self.stats.closed()
                elif s._queued_bytes >= s._min_chunk or s._closing:
                    self._push(s)
            if partial is not None and s._on_partial is not None:
                s._loop.call_soon_threadsafe(s._on_partial, partial)
            if work.final:
                s._loop.call_soon_threadsafe(_settle, s._done, result, error)


def _settle(fut: asyncio.Future[Transcript | None], result: Transcript | None, error: BaseException | None) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


_default: DecodeScheduler | None = None
_default_lock = threading.Lock()


def default_scheduler() -> DecodeScheduler:
    """The process-wide scheduler (one worker per core)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = DecodeScheduler()
        return _default
