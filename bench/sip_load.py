"""SIP/RTP load benchmark with SIPp on loopback: calls per second, concurrent media calls, per-call cost, fd leaks.

    .venv/bin/python bench/sip_load.py [--cps 50] [--cps-calls 500] [--media-calls 200] [--media-seconds 20]
                                       [--limits shipped [--trust 127.0.0.1]]

With `--limits off` (the default) the INVITE rate limits are raised out of the way, to measure the server itself;
with `--limits shipped` the server has the shipped settings' limits (per source, global, call limit), and SIPp's
address is a trusted trunk with `--trust 127.0.0.1`. The UAS runs in this process with a handler that plays a prompt (a tone) back to back and passes every caller frame
through webrtcvad (no ASR); SIPp places the calls and plays 20 ms PCMU RTP from a pcap. Prints figures; asserts none.
RTP send jitter is measured on every packet sent: its send time against the ideal 20 ms schedule of its stream
(anchored on the stream's first packet); a packet is late when it leaves more than 10 ms after its slot. The media
clock's tick lateness and tick duration (the last packet of a tick leaves that much after the first) are shown too.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import webrtcvad

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "ivr" / "sip"))

from sipclient import rtp  # noqa: E402
from sippkit import answer_ok, caller_bye, invite_answered, pause, run_sipp, scenario, sipp_counts  # noqa: E402,F401

from asr.audio import FRAME_BYTES  # noqa: E402
from ivr.channel.base import CallerHungUp  # noqa: E402
from ivr.codecs.g711 import ulaw_encode  # noqa: E402
from ivr.config import Settings  # noqa: E402
from ivr.hotline.sip_endpoint import server_config  # noqa: E402
from ivr.rtp.pcap import UdpDatagram, write_udp  # noqa: E402
from ivr.rtp.session import RtpSession  # noqa: E402
from ivr.sip.endpoint import SipServerConfig  # noqa: E402
from ivr.sip.protection import ProtectionConfig  # noqa: E402
from ivr.sip.uas import SipServer  # noqa: E402


class MediaHandler:
    """Prompt out continuously, caller audio through VAD, until the caller hangs up."""

    def __init__(self) -> None:
        t = np.arange(8000) / 8000
        pcm = (5000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
        self.prompt = [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]
        self.frames = 0
        self.speech = 0
        self.vad = webrtcvad.Vad(2)

    async def __call__(self, channel) -> None:  # type: ignore[no-untyped-def]
        i = 0
        try:
            while True:
                inbound = await channel.exchange(self.prompt[i % len(self.prompt)])
                self.frames += 1
                if self.vad.is_speech(inbound.audio, 8000):
                    self.speech += 1
                i += 1
        except CallerHungUp:
            pass


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def pcmu_pcap(path: Path, seconds: float) -> Path:
    n = np.arange(int(8000 * seconds))
    pcm = (4000 * np.sin(2 * np.pi * 300 * n / 8000) * (np.sin(2 * np.pi * 2 * n / 8000) > 0)).astype("<i2")
    data = pcm.tobytes()
    items = [UdpDatagram(100.0 + 0.02 * k, ("10.0.0.1", 6000), ("10.0.0.2", 7000),
                         rtp(0, k, 160 * k, 0xBE7C, ulaw_encode(data[i : i + 320]), marker=k == 0))
             for k, i in enumerate(range(0, len(data) - 319, 320))]
    write_udp(path, items)
    return path


async def start(handler: MediaHandler, max_calls: int, shipped: Settings | None) -> SipServer:
    """The UAS with the limits of `shipped` settings, or (None) with the INVITE limits out of the way."""
    if shipped is not None:
        cfg = server_config(shipped)
    else:
        cfg = SipServerConfig(host="127.0.0.1", port=0, rtp_port_min=46000, rtp_port_max=49999, max_calls=max_calls,
                              protection=ProtectionConfig(invite_rate=1e6, invite_burst=10**6, global_invite_rate=0))
    server = SipServer(cfg, handler)
    await server.start()
    return server


async def settle(server: SipServer) -> None:
    for _ in range(1200):  # transactions linger 64*T1 = 32 s by design
        if not any(server.resources().values()):
            return
        await asyncio.sleep(0.05)


async def bench_cps(work: Path, rate: int, calls: int, hold_ms: int, shipped: Settings | None) -> None:
    handler = MediaHandler()
    server = await start(handler, 4000, shipped)
    fd0 = fds()
    cpu0, t0 = time.process_time(), time.monotonic()
    xml = scenario("cps", invite_answered(), pause(hold_ms), caller_bye(2))
    rc, out = await run_sipp(xml, work, server.port, calls=calls, rate=rate, limit=calls, timeout_s=300, nice=10)
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    ok, failed = sipp_counts(out)
    await settle(server)
    print(f"cps: {rate}/s offered, {calls} calls of {hold_ms} ms: {ok} ok, {failed} failed (sipp rc {rc}), "
          f"{wall:.1f} s wall, server CPU {cpu:.1f} s = {1000 * cpu / max(calls, 1):.2f} ms per call; "
          f"fds {fd0} -> {fds()}; left {server.resources()}; INVITEs refused {dict(server.refused) or 'none'}")
    if failed:
        print(out[-1500:])
    await server.stop()


async def bench_media(work: Path, calls: int, seconds: int, rate: int, shipped: Settings | None) -> None:
    handler = MediaHandler()
    server = await start(handler, calls + 10, shipped)
    pcap = pcmu_pcap(work / "caller.pcap", seconds)
    fd0, rss0 = fds(), rss_mb()
    xml = scenario("media", invite_answered(),
                   f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n', pause(seconds * 1000),
                   caller_bye(2))
    server.clock.lateness.clear()
    server.clock.durations.clear()
    RtpSession.send_logs = []
    peak = {"calls": 0, "rss": rss0}

    async def sample() -> None:
        while True:
            await asyncio.sleep(0.5)
            if len(server.calls) >= peak["calls"]:
                peak["calls"] = len(server.calls)
                peak["rss"] = max(peak["rss"], rss_mb())

    sampler = asyncio.create_task(sample())
    cpu0, t0 = time.process_time(), time.monotonic()
    rc, out = await run_sipp(xml, work, server.port, calls=calls, rate=rate, limit=calls, timeout_s=seconds + 120,
                             nice=10)
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    sampler.cancel()
    ok, failed = sipp_counts(out)
    late = np.array(server.clock.lateness) * 1000
    dur = np.array(server.clock.durations[: len(late)]) * 1000
    call_seconds = calls * seconds
    await settle(server)
    offsets, intervals = [], []
    for log in RtpSession.send_logs or []:
        t = np.array(log)
        if len(t) < 3:
            continue
        slots = t[0] + 0.02 * np.arange(len(t))
        off = (t - slots) * 1000
        offsets.append(off - off.min())  # a stream's schedule may start anywhere inside its first tick
        intervals.append(np.abs(np.diff(t) * 1000 - 20))
    off_all, iv_all = np.concatenate(offsets), np.concatenate(intervals)
    RtpSession.send_logs = None
    print(f"media: {calls} calls x {seconds} s (ramp {rate}/s): peak {peak['calls']} concurrent; {ok} ok, "
          f"{failed} failed (sipp rc {rc})")
    print(f"  RTP send jitter over {len(off_all)} packets: |interval - 20 ms| p50 {np.percentile(iv_all, 50):.2f} ms, "
          f"p99 {np.percentile(iv_all, 99):.2f} ms; offset from the 20 ms schedule p99 {np.percentile(off_all, 99):.2f}"
          f" ms, max {off_all.max():.1f} ms; late (> 10 ms) {100 * np.mean(off_all > 10):.3f} %")
    print(f"  media clock: tick lateness p99 {np.percentile(late, 99):.2f} ms, tick duration p99 "
          f"{np.percentile(dur, 99):.2f} ms (all {peak['calls']} calls served per tick)")
    print(f"  caller frames through VAD {handler.frames} ({handler.speech} speech); server CPU {cpu:.1f} s over "
          f"{wall:.1f} s = {100 * cpu / wall:.0f} % of one core, {1000 * cpu / call_seconds:.2f} ms CPU per call-second")
    print(f"  RSS {rss0:.1f} MB -> peak {peak['rss']:.1f} MB = {(peak['rss'] - rss0) * 1024 / max(peak['calls'], 1):.0f}"
          f" kB per call; maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"fds {fd0} -> {fds()}; left {server.resources()}")
    if failed:
        print(out[-1500:])
    await server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cps", type=int, nargs="*", default=[50])
    ap.add_argument("--cps-calls", type=int, default=500)
    ap.add_argument("--hold-ms", type=int, default=2000)
    ap.add_argument("--media-calls", type=int, default=200)
    ap.add_argument("--media-seconds", type=int, default=20)
    ap.add_argument("--media-rate", type=int, default=20)
    ap.add_argument("--limits", choices=["off", "shipped"], default="off",
                    help="INVITE limits: out of the way (off) or the shipped settings' (shipped)")
    ap.add_argument("--trust", action="append", default=[], metavar="ADDR", help="with --limits shipped: a trusted "
                    "source (SIPp's is 127.0.0.1)")
    args = ap.parse_args()
    shipped = Settings(sip_host="127.0.0.1", sip_port=0, rtp_port_min=46000, rtp_port_max=49999,
                       sip_trusted=tuple(args.trust)) if args.limits == "shipped" else None

    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            for rate in args.cps:
                d = Path(tmp) / f"cps{rate}"
                d.mkdir()
                await bench_cps(d, rate, args.cps_calls, args.hold_ms, shipped)
            if args.media_calls:
                d = Path(tmp) / "media"
                d.mkdir()
                await bench_media(d, args.media_calls, args.media_seconds, args.media_rate, shipped)

    asyncio.run(run())


if __name__ == "__main__":
    main()
