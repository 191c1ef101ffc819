"""AsyncDecoder under a real event loop with the real Korean model."""
from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from asr.engine import Recognizer, VoskEngine
from asr.errors import DecoderClosedError
from asr.results import Partial, Transcript
from asr.stream import AsyncDecoder

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


async def stream(decoder: AsyncDecoder, pcm: bytes) -> Transcript:
    for i in range(0, len(pcm), 320):
        decoder.feed(pcm[i:i + 320])
        await asyncio.sleep(0)  # frames arrive while earlier chunks are being decoded
    return await decoder.finish()


def test_chunks_are_decoded_in_order_off_the_loop(ko_engine: VoskEngine) -> None:
    pcm = fixture_pcm("c05")
    rec_engine = RecordingEngine(ko_engine)
    partials: list[tuple[str, str]] = []

    async def main() -> Transcript:
        loop_thread = threading.current_thread().name

        def on_partial(p: Partial) -> None:
            partials.append((p.text, threading.current_thread().name))

        result = await stream(AsyncDecoder(rec_engine, on_partial=on_partial), pcm)
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
    executor = ThreadPoolExecutor(max_workers=4)

    async def main() -> list[Transcript]:
        engines = [RecordingEngine(ko_engine) for _ in names]
        results = await asyncio.gather(*(stream(AsyncDecoder(e, executor=executor), p) for e, p in zip(engines, pcms)))
        for e, p in zip(engines, pcms):
            assert b"".join(e.fed) == p
        return list(results)

    results = asyncio.run(main())
    executor.shutdown()
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
def test_audio_reaches_the_recogniser_in_chunks_of_at_least_min_chunk(ko_engine: VoskEngine, min_chunk_ms: int) -> None:
    pcm = fixture_pcm("m04")
    rec_engine = RecordingEngine(ko_engine)

    async def main() -> Transcript:
        return await stream(AsyncDecoder(rec_engine, min_chunk_ms=min_chunk_ms), pcm)

    result = asyncio.run(main())
    assert b"".join(rec_engine.fed) == pcm
    assert all(len(c) >= min_chunk_ms * 16 for c in rec_engine.fed[:-1])  # only the rest at finish() is shorter
    assert result.audio_ms == len(pcm) // 16


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
