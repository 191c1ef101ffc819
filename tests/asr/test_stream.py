"""AsyncDecoder under a real event loop with the real Korean model."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from asr.engine import Recognizer, VoskEngine
from asr.errors import DecoderClosedError
from asr.results import Partial, Transcript
from asr.stream import AsyncDecoder, DecodeScheduler

from .conftest import fixture_pcm


class RecordingEngine:
    """Wraps the real engine and records, per recogniser, the chunks in the order they were decoded."""

    name = "vosk"

    def __init__(self, engine: VoskEngine) -> None:
        self.engine = engine
        self.model_name = engine.model_name
        self.supports_grammar = engine.supports_grammar
        self.fed: list[bytes] = []
        self.threads: set[str] = set()

    def recognizer(self, phrases=None) -> Recognizer:  # type: ignore[no-untyped-def]
        real = self.engine.recognizer(phrases)
        outer = self

        class Rec:
            def accept(self, pcm: bytes) -> Partial | None:
                outer.fed.append(pcm)
                outer.threads.add(threading.current_thread().name)
                return real.accept(pcm)

            def final(self) -> Transcript:
                return real.final()

        self.real = real
        return Rec()

    def release(self, rec: Recognizer) -> None:
        self.engine.release(self.real)


async def stream(decoder: AsyncDecoder, pcm: bytes, frame_s: float = 0.0) -> Transcript:
    for i in range(0, len(pcm), 320):
        decoder.feed(pcm[i:i + 320])
        await asyncio.sleep(frame_s)  # frames arrive while earlier chunks are being decoded
    return await decoder.finish()


def test_chunks_are_decoded_in_order_off_the_loop(ko_engine: VoskEngine) -> None:
    pcm = fixture_pcm("c05")
    ko_engine.warm(fixture_pcm("c01") + fixture_pcm("c02"))  # a cold recogniser takes seconds: one or two calls
    rec_engine = RecordingEngine(ko_engine)
    partials: list[tuple[str, str]] = []

    async def main() -> Transcript:
        loop_thread = threading.current_thread().name

        def on_partial(p: Partial) -> None:
            partials.append((p.text, threading.current_thread().name))

        result = await stream(AsyncDecoder(rec_engine, on_partial=on_partial), pcm, frame_s=0.02)
        assert all(th == loop_thread for _, th in partials)  # callbacks come back on the loop
        assert loop_thread not in rec_engine.threads
        return result

    result = asyncio.run(main())
    assert b"".join(rec_engine.fed) == pcm  # every byte, once, in order
    assert len(rec_engine.fed) < len(pcm) // 320  # frames that piled up were batched
    assert result.words and partials
    assert result.audio_ms == len(pcm) // 16


def test_concurrent_calls_keep_their_own_audio(ko_engine: VoskEngine) -> None:
    names = ["c06", "c07", "q02", "n01"]
    pcms = [fixture_pcm(n) for n in names]
    scheduler = DecodeScheduler(workers=4)

    async def main() -> list[Transcript]:
        engines = [RecordingEngine(ko_engine) for _ in names]
        results = await asyncio.gather(*(stream(AsyncDecoder(e, scheduler=scheduler), p) for e, p in zip(engines, pcms)))
        for e, p in zip(engines, pcms):
            assert b"".join(e.fed) == p
        return list(results)

    results = asyncio.run(main())
    scheduler.shutdown()
    for r, p in zip(results, pcms):
        assert r.audio_ms == len(p) // 16
        assert r.words and all(w.end <= r.audio_ms / 1000 + 0.05 for w in r.words)


def test_feed_after_finish_and_cancel(ko_engine: VoskEngine) -> None:
    async def main() -> None:
        d = AsyncDecoder(ko_engine)
        d.feed(fixture_pcm("m01"))
        await d.finish()
        with pytest.raises(DecoderClosedError, match=r"^AsyncDecoder.feed\(\) after finish\(\) or cancel\(\)$"):
            d.feed(b"\x00\x00")
        before = ko_engine.pooled()
        c = AsyncDecoder(ko_engine)
        c.feed(fixture_pcm("m02"))
        await asyncio.sleep(0)
        await c.cancel()
        assert ko_engine.pooled() >= before  # the recogniser came back (or was never taken)
        with pytest.raises(DecoderClosedError):
            c.feed(b"\x00\x00")

    asyncio.run(main())


def test_finish_without_audio_is_empty(ko_engine: VoskEngine) -> None:
    async def main() -> Transcript:
        return await AsyncDecoder(ko_engine).finish()

    t = asyncio.run(main())
    assert t.empty and t.words == () and t.audio_ms == 0


@pytest.mark.parametrize("min_chunk_ms", [100, 240])
def test_audio_reaches_the_recogniser_in_chunks_of_min_chunk(ko_engine: VoskEngine, min_chunk_ms: int) -> None:
    pcm = fixture_pcm("m04")
    rec_engine = RecordingEngine(ko_engine)

    async def main() -> Transcript:
        return await stream(AsyncDecoder(rec_engine, min_chunk_ms=min_chunk_ms), pcm)

    result = asyncio.run(main())
    assert b"".join(rec_engine.fed) == pcm
    assert all(len(c) == min_chunk_ms * 16 for c in rec_engine.fed[:-1])  # only the rest at finish() is shorter
    assert result.audio_ms == len(pcm) // 16


def test_a_busy_node_gives_the_transcript_an_idle_node_gives(ko_engine: VoskEngine) -> None:
    pcm = fixture_pcm("c05") + fixture_pcm("c03")

    async def idle(engine: RecordingEngine) -> Transcript:  # every chunk decoded as soon as it is complete
        d = AsyncDecoder(engine)
        for i in range(0, len(pcm), 320):
            d.feed(pcm[i:i + 320])
            while d._queued_bytes >= d._min_chunk or d._running or d._in_heap:
                await asyncio.sleep(0.001)
        return await d.finish()

    async def busy(engine: RecordingEngine) -> Transcript:  # every frame queued before the first is decoded
        d = AsyncDecoder(engine, scheduler=DecodeScheduler(workers=1))
        for i in range(0, len(pcm), 320):
            d.feed(pcm[i:i + 320])
        return await d.finish()

    calm, rushed, again = RecordingEngine(ko_engine), RecordingEngine(ko_engine), RecordingEngine(ko_engine)
    first = asyncio.run(idle(calm))
    behind = asyncio.run(busy(rushed))
    asyncio.run(busy(RecordingEngine(ko_engine)))  # other audio in between (once changed the random dither)
    later = asyncio.run(idle(again))
    assert first.text and first.text == behind.text == later.text
    assert rushed.fed == calm.fed  # the same pieces, whether they came one by one or all at once


def test_finish_decodes_audio_shorter_than_a_chunk(ko_engine: VoskEngine) -> None:
    rec_engine = RecordingEngine(ko_engine)
    pcm = fixture_pcm("m01")[:60 * 16]

    async def main() -> Transcript:
        d = AsyncDecoder(rec_engine)
        for i in range(0, len(pcm), 320):
            d.feed(pcm[i:i + 320])
        await asyncio.sleep(0.05)
        assert rec_engine.fed == []  # less than a chunk: nothing sent yet
        return await d.finish()

    assert asyncio.run(main()).audio_ms == 60
    assert rec_engine.fed == [pcm]


class SlowEngine:
    """A stand-in engine for scheduling logic: each recogniser logs (name, bytes) per call; `gate` holds calls."""

    name, model_name, supports_grammar = "fake", "fake", False

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.released = 0
        self.names = iter(["first", "second", "third", "fourth"])

    def recognizer(self, phrases=None) -> Recognizer:  # type: ignore[no-untyped-def]
        outer, name = self, next(self.names)

        class Rec:
            def accept(self, pcm: bytes) -> Partial | None:
                outer.gate.wait()
                outer.calls.append((name, len(pcm)))
                return None

            def final(self) -> Transcript:
                outer.calls.append((name, -1))
                return Transcript(text=name)

        return Rec()

    def release(self, rec: Recognizer) -> None:
        self.released += 1


def test_the_stream_most_behind_is_decoded_first_all_it_has_in_one_step_in_even_pieces() -> None:
    engine = SlowEngine()
    scheduler = DecodeScheduler(workers=1)
    chunk = bytes(3200)  # 200 ms

    async def main() -> list[str]:
        a = AsyncDecoder(engine, scheduler=scheduler)  # recogniser "first"
        engine.gate.clear()
        a.feed(chunk)  # the only worker takes it and waits at the gate
        while not scheduler._heap and not a._running:
            await asyncio.sleep(0.001)
        b, c = AsyncDecoder(engine, scheduler=scheduler), AsyncDecoder(engine, scheduler=scheduler)
        c.feed(chunk)  # c's audio arrived before b's: c is further behind
        await asyncio.sleep(0.01)
        b.feed(chunk)
        c.feed(chunk)
        c.feed(chunk)
        engine.gate.set()
        results = await asyncio.gather(c.finish(), b.finish(), a.finish())
        return [r.text for r in results]

    texts = asyncio.run(main())
    scheduler.shutdown()
    audio = [(name, n) for name, n in engine.calls if n > 0]
    # c (second) first, its 600 ms in one step, given to the recogniser 200 ms at a time as when it is not behind
    assert audio == [("first", 3200), ("second", 3200), ("second", 3200), ("second", 3200), ("third", 3200)]
    assert texts == ["second", "third", "first"] and engine.released == 3
    stats = scheduler.stats
    assert stats.streams == 0 and stats.total_audio_s == 1.0


def test_a_caller_waiting_for_the_reply_goes_before_a_chunk_that_can_wait_but_not_before_an_overdue_one() -> None:
    engine = SlowEngine()
    scheduler = DecodeScheduler(workers=1, lag_target_ms=500, final_target_ms=300)
    chunk = bytes(3200)  # 200 ms

    async def main() -> None:
        a = AsyncDecoder(engine, scheduler=scheduler)  # "first": holds the only worker at the gate
        engine.gate.clear()
        a.feed(chunk)
        while not a._running:
            await asyncio.sleep(0.001)
        old = AsyncDecoder(engine, scheduler=scheduler)  # a chunk due 0.7 s after it arrived
        old.feed(chunk)
        await asyncio.sleep(0.45)
        recent = AsyncDecoder(engine, scheduler=scheduler)  # a chunk that can wait
        recent.feed(chunk)
        ending = AsyncDecoder(engine, scheduler=scheduler)  # 100 ms, then the caller stops
        ending.feed(bytes(1600))
        waiting = asyncio.ensure_future(ending.finish())  # due 0.3 s from now: after `old`, before `recent`
        await asyncio.sleep(0.01)
        engine.gate.set()
        await waiting
        await asyncio.gather(a.finish(), old.finish(), recent.finish())

    asyncio.run(main())
    scheduler.shutdown()
    # recognisers are named in the order streams first reach one: the overdue chunk, then the ending stream's rest
    # and final result in one step; the chunk that could wait comes later
    assert engine.calls[:4] == [("first", 3200), ("second", 3200), ("third", 1600), ("third", -1)]
    assert ("fourth", 3200) in engine.calls


def test_jobs_report_their_lag_from_the_newest_and_the_oldest_frame() -> None:
    engine = SlowEngine()
    scheduler = DecodeScheduler(workers=1)
    jobs = []
    scheduler.stats.observers.append(jobs.append)

    async def main() -> None:
        d = AsyncDecoder(engine, scheduler=scheduler, min_chunk_ms=40)
        engine.gate.clear()
        d.feed(bytes(320))
        d.feed(bytes(320))  # 40 ms queued: decoded after the gate opens
        await asyncio.sleep(0.05)
        engine.gate.set()
        await d.finish()

    asyncio.run(main())
    scheduler.shutdown()
    first = jobs[0]
    assert first.audio_ms == 40 and not first.final and jobs[-1].final
    assert first.lag_oldest_s >= first.lag_s >= 0.04  # held at the gate at least 50 ms after the frames arrived
    snap = scheduler.stats.snapshot(60)
    assert snap.jobs == 2 and snap.streams == 0 and snap.audio_s == 0.04


def test_the_rest_short_of_a_chunk_counts_its_lag_from_the_end_of_the_utterance() -> None:
    engine = SlowEngine()
    scheduler = DecodeScheduler(workers=1)
    jobs = []
    scheduler.stats.observers.append(jobs.append)

    async def main() -> float:
        d = AsyncDecoder(engine, scheduler=scheduler, min_chunk_ms=200)
        d.feed(bytes(1600))  # 100 ms: less than a chunk, so it waits for finish()
        await asyncio.sleep(0.3)  # the endpointer deciding that the caller has stopped
        closed = time.monotonic()
        await d.finish()
        return closed

    closed = asyncio.run(main())
    scheduler.shutdown()
    [final] = jobs
    assert final.final and final.audio_ms == 100
    assert final.newest >= closed and final.oldest >= closed  # the 300 ms were the caller's pause, not a decoder's


def test_a_cancelled_stream_gives_its_recogniser_back_without_decoding_what_was_queued() -> None:
    engine = SlowEngine()
    scheduler = DecodeScheduler(workers=1)

    async def main() -> None:
        d = AsyncDecoder(engine, scheduler=scheduler, min_chunk_ms=20)
        engine.gate.clear()
        d.feed(bytes(320))
        while not d._running:
            await asyncio.sleep(0.001)
        d.feed(bytes(3200))  # queued behind the running call: dropped by cancel()
        cancel = asyncio.ensure_future(d.cancel())
        await asyncio.sleep(0.01)
        engine.gate.set()
        await cancel
        with pytest.raises(DecoderClosedError):
            d.feed(bytes(320))

    asyncio.run(main())
    scheduler.shutdown()
    assert engine.calls == [("first", 320), ("first", -1)] and engine.released == 1
