"""B2BUA bridge load: N bridged calls, SIPp caller (PCMA speech) -> our SipServer -> place_call -> SIPp operator
that echoes RTP (PCMU), `bridge()` relaying both ways.

    .venv/bin/python bench/bridge_load.py [--calls 20 50] [--seconds 10]

Relay delay: from a frame leaving one leg's jitter buffer to the tick that sends it on the other leg (per call
p50/p95 from BridgeResult). RTP late: a packet sent more than 10 ms after its slot of the stream's 20 ms schedule
(both legs' sessions). CPU: this process only (SIPp runs niced in its own processes). Prints figures; asserts none.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "ivr" / "sip"))

from sippkit import free_udp_port, run_sipp, sipp_media_port  # noqa: E402

from ivr.channel.base import Channel  # noqa: E402
from ivr.media.bridge import BridgeResult, bridge  # noqa: E402
from ivr.rtp.session import RtpSession  # noqa: E402
from ivr.sip.endpoint import SipServerConfig  # noqa: E402
from ivr.sip.uac import place_call  # noqa: E402
from ivr.sip.uas import SipServer  # noqa: E402

SCENARIOS = ROOT / "tests" / "ivr" / "queue" / "sipp"


async def bench(work: Path, calls: int, seconds: int) -> None:
    results: list[BridgeResult] = []
    active = {"now": 0, "peak": 0}
    op_port = free_udp_port()
    operator = subprocess.Popen(
        ["nice", "-n", "10", "sipp", "-sf", str(SCENARIOS / "operator_echo.xml"), "-i", "127.0.0.1", "-p",
         str(op_port), "-mi", "127.0.0.1", "-mp", str(sipp_media_port()), "-rtp_echo", "-m", str(calls),
         "-nostdin", "-timeout", f"{seconds + 120}s"], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def handler(channel: Channel) -> None:
        res = await place_call(f"sip:8001@127.0.0.1:{op_port}", ("127.0.0.1", op_port), ports=server.ports,
                               clock=server.clock)
        if res.channel is None:
            print(f"  operator leg not answered: {res.outcome} {res.status}")
            return
        active["now"] += 1
        active["peak"] = max(active["peak"], active["now"])
        try:
            results.append(await bridge(channel, res.channel))
        finally:
            active["now"] -= 1

    server = SipServer(SipServerConfig(host="127.0.0.1", port=0, rtp_port_min=32000, rtp_port_max=35999,
                                       max_calls=calls + 10), handler)
    await server.start()
    await asyncio.sleep(0.3)
    xml = (SCENARIOS / "caller_hangs_up.xml").read_text().replace('milliseconds="4000"', f'milliseconds="{seconds * 1000}"')
    fd0 = len(os.listdir("/proc/self/fd"))
    RtpSession.send_logs = []
    server.clock.lateness.clear()
    cpu0, t0 = time.process_time(), time.monotonic()
    rc, out = await run_sipp(xml, work, server.port, calls=calls, rate=min(calls, 20), limit=calls,
                             timeout_s=seconds + 120, nice=10)
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    while any(server.resources().values()):  # BYE transactions linger for timer J
        await asyncio.sleep(0.05)
    op_rc = await asyncio.get_running_loop().run_in_executor(None, operator.wait)
    await asyncio.sleep(0.05)
    offsets = []
    for log in RtpSession.send_logs or []:
        t = np.array(log)
        if len(t) > 2:
            off = (t - (t[0] + 0.02 * np.arange(len(t)))) * 1000
            offsets.append(off - off.min())
    RtpSession.send_logs = None
    off_all = np.concatenate(offsets) if offsets else np.zeros(1)
    late_ticks = np.array(server.clock.lateness) * 1000
    talk_s = sum(r.talk_ms for r in results) / 1000
    p50s, p95s = np.array([r.delay_p50_ms for r in results]), np.array([r.delay_p95_ms for r in results])
    print(f"bridged calls: {len(results)} of {calls} x {seconds} s (peak {active['peak']} at once); caller sipp rc "
          f"{rc}, operator sipp rc {op_rc}; {sum(r.frames_relayed for r in results)} frames relayed")
    print(f"  relay delay (frame in -> sent on the other leg): per-call p50 median {np.median(p50s):.0f} ms, "
          f"per-call p95 median {np.median(p95s):.0f} ms, worst p95 {p95s.max():.0f} ms")
    print(f"  dropped (a leg ran ahead) {sum(r.dropped for r in results)}, silence inserted "
          f"{sum(r.silence_inserted for r in results)} (of {2 * talk_s * 50:.0f} frames)")
    print(f"  RTP sent over {len(off_all)} packets: late (> 10 ms after slot) {100 * np.mean(off_all > 10):.3f} %, "
          f"offset p99 {np.percentile(off_all, 99):.2f} ms; clock tick lateness p99 "
          f"{np.percentile(late_ticks, 99):.2f} ms")
    print(f"  CPU {cpu:.1f} s over {wall:.1f} s = {100 * cpu / wall:.0f} % of a core; "
          f"{1000 * cpu / max(talk_s, 1e-9):.2f} ms CPU per bridged call-second = "
          f"{100 * cpu / max(talk_s, 1e-9):.2f} % of a core per bridged call")
    print(f"  fds {fd0} -> {len(os.listdir('/proc/self/fd'))}, RTP ports in use {len(server.ports.in_use)}")
    if rc:
        print(out[-1500:])
    await server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, nargs="*", default=[20, 50])
    ap.add_argument("--seconds", type=int, default=10, help="how long each caller stays (it speaks for the first 7 s)")
    args = ap.parse_args()

    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            for n in args.calls:
                d = Path(tmp) / f"n{n}"
                d.mkdir()
                await bench(d, n, args.seconds)

    asyncio.run(run())


if __name__ == "__main__":
    main()
