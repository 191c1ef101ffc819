"""Decoding off the event loop: one utterance's audio fed in order to a recogniser on a worker thread.

Vosk's calls release the GIL, so a shared thread pool spreads many calls' decoding over the cores, while each
utterance's chunks stay in order (a single drain task per utterance). Audio goes to the recogniser in chunks of at
least `min_chunk_ms` (200 ms): every call into a recogniser costs a thread hop, a partial result and a resampler
call on cold caches (bench/asr_streams.py, 2-4 paced streams: resampling was 3-4.5 % of the decoder's CPU in 100 ms
chunks, 2.5-2.7 % in 200 ms ones; per 20 ms frame, partial results alone were ~8 %). Frames that arrive while a
chunk is being decoded are batched into the next call, so a slow chunk never makes the backlog grow frame by frame.
`finish()` decodes what is left and finalises in one job on the pool.
"""
from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from asr.audio import SAMPLE_RATE
from asr.engine import Engine, Recognizer
from asr.errors import DecoderClosedError
from asr.results import Partial, Transcript

__all__ = ["AsyncDecoder", "decode_executor"]

_executor: ThreadPoolExecutor | None = None


def decode_executor() -> ThreadPoolExecutor:
    """The process-wide pool for decoding (two threads per core)."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1), thread_name_prefix="asr")
    return _executor


class AsyncDecoder:
    """Streams one utterance to a recogniser without blocking the event loop.

    Audio is sent once `min_chunk_ms` of it is queued, so partial results come at most that much later.
    """

    def __init__(
        self,
        engine: Engine,
        phrases: Sequence[str] | None = None,
        on_partial: Callable[[Partial], None] | None = None,
        executor: ThreadPoolExecutor | None = None,
        min_chunk_ms: int = 200,
    ) -> None:
        self.engine = engine
        self._phrases = phrases
        self._on_partial = on_partial
        self._executor = executor or decode_executor()
        self._min_chunk = min_chunk_ms * SAMPLE_RATE // 1000 * 2
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._task: asyncio.Task[None] | None = None
        self._rec: Recognizer | None = None
        self._finished = False

    def feed(self, pcm: bytes) -> None:
        """Queue audio for decoding; returns at once."""
        if self._finished:
            raise DecoderClosedError("AsyncDecoder.feed() after finish() or cancel()")
        self._buffer.append(pcm)
        self._buffered += len(pcm)
        if self._buffered >= self._min_chunk and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._drain())

    def _take(self) -> bytes:
        chunk = b"".join(self._buffer)
        self._buffer.clear()
        self._buffered = 0
        return chunk

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._buffered >= self._min_chunk:
            partial = await loop.run_in_executor(self._executor, self._accept, self._take())
            if partial is not None and self._on_partial is not None:
                self._on_partial(partial)

    def _accept(self, chunk: bytes) -> Partial | None:
        if self._rec is None:
            self._rec = self.engine.recognizer(self._phrases)
        return self._rec.accept(chunk)

    def _final(self, rest: bytes) -> Transcript:
        if rest:
            self._accept(rest)
        if self._rec is None:
            self._rec = self.engine.recognizer(self._phrases)
        result = self._rec.final()
        self.engine.release(self._rec)
        self._rec = None
        return result

    async def finish(self) -> Transcript:
        """Decode what is left and return the final transcript."""
        self._finished = True
        if self._task is not None:
            await self._task
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._final, self._take())

    async def cancel(self) -> None:
        """Drop the utterance (caller hung up); the recogniser goes back to the pool."""
        self._finished = True
        self._take()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._rec is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._final, b"")
