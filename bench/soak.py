"""Soak run of a real `ivr serve`: thousands of mixed calls with PROTOS-style malformed INVITEs interleaved and
console requests alongside; reports tracebacks, RSS and file descriptors before and after.

    .venv/bin/python bench/soak.py [--calls 3000] [--cps 14] [--malformed-per-s 3] [--console-per-s 5] [--keep DIR]

Callers (SIPp, from 127.0.0.1): 55 % leave a complaint (press 1 by RFC 4733, speak one of the shared Mandarin
fixtures, hang up), the rest hang up after a few seconds of silence. Malformed INVITEs (bench/malformed.py) go out by
raw UDP at their own rate, an OPTIONS liveness probe every second, and a console client signs in (wrong password,
then right), lists and exports tickets and reads /metrics. "Before" is sampled once the server is up and idle,
"after" once every caller has gone and the server's timers have run out. Prints figures; asserts none.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "ivr" / "sip"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from malformed import malformed  # noqa: E402
from sippkit import PCMU_EVENTS, caller_bye, invite_answered, pause, pcmu_pcap, play, run_sipp, scenario  # noqa: E402

from asr.audio import duration_ms, read_wav  # noqa: E402
from ivr.console.users import UserStore  # noqa: E402
from ivr.tickets.store import TicketStore  # noqa: E402
from prompts import PromptLibrary, load_catalogue  # noqa: E402
from prompts.render import render_catalogue  # noqa: E402

SHARE = Path("/usr/share/sip-tester")
PASSWORD = "soak-password-1"


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fd_targets(pid: int) -> Counter[str]:
    """What the process's file descriptors point at, by kind (socket, anon_inode:[eventfd], a file's folder ...)."""
    kinds: Counter[str] = Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kinds[re.sub(r"\[\d+\]$", "", target) if target.startswith(("socket:", "pipe:", "anon_inode:"))
              else str(Path(target).parent)] += 1
    return kinds


def metric_lines(base: str, prefixes: tuple[str, ...]) -> list[str]:
    """The server's own counters from /metrics (SIP refusals and drops, media clock, suppressed log lines)."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return [x for x in text.splitlines() if x.startswith(prefixes) and not x.endswith(" 0.0")]


def proc_stats(pid: int) -> dict[str, int]:
    """RSS and peak RSS (kB), open file descriptors and threads of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    field = {k: int(re.search(rf"^{k}:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
             for k in ("VmRSS", "VmHWM", "Threads")}
    return {"rss_kb": field["VmRSS"], "peak_kb": field["VmHWM"], "threads": field["Threads"],
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


async def wait_until_serving(base: str, server: subprocess.Popen[bytes], log: Path, tries: int = 900) -> None:
    """Until the server's console answers /metrics (every 0.2 s); its log's end if it exits first."""
    for _ in range(tries):
        try:
            httpx.get(f"{base}/metrics", timeout=1)
            return
        except httpx.HTTPError:
            if server.poll() is not None:
                raise SystemExit(f"ivr serve exited: {log.read_text()[-2000:]}") from None
            await asyncio.sleep(0.2)


def complaint_xml(work: Path, speech_wav: Path, intro_ms: int) -> str:
    speech = read_wav(speech_wav)
    pcap = pcmu_pcap(work / f"{speech_wav.stem}.pcap", speech)
    return scenario("complaint", invite_answered(PCMU_EVENTS), pause(1500), play(SHARE / "dtmf_2833_1.pcap", 600),
                    pause(intro_ms + 1500), play(pcap, duration_ms(speech) + 800), caller_bye(2))


def silent_xml() -> str:
    return scenario("silent", invite_answered(PCMU_EVENTS), pause(3000), caller_bye(2))


async def sipp_load(name: str, xml: str, port: int, calls: int, rate: float, work: Path) -> tuple[str, int, str]:
    d = work / name
    d.mkdir()
    rc, out = await run_sipp(xml, d, port, calls=calls, rate=rate, limit=max(10, int(rate * 40)),
                             timeout_s=int(calls / rate) + 300, nice=5)
    return name, rc, out


def sipp_summary(out: str) -> str:
    m = re.search(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", out)
    f = re.search(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", out)
    return f"{m.group(1) if m else '?'} ok, {f.group(1) if f else '?'} failed"


class Prober(asyncio.DatagramProtocol):
    """Sends malformed INVITEs and OPTIONS probes from one socket and sorts what comes back."""

    def __init__(self) -> None:
        self.final: dict[bytes, str] = {}  # Call-ID -> first final status (retransmissions not counted)
        self.probes_sent = 0
        self.probes_answered = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        line = data.split(b"\r\n", 1)[0]
        if b"probe-" in data and b"OPTIONS" in data.split(b"CSeq:", 1)[-1][:40]:
            self.probes_answered += 1
        elif line.startswith(b"SIP/2.0 ") and line[8:9] != b"1":
            call_id = re.search(rb"^(?:Call-ID|i)[ \t]*:[ \t]*(.*?)\r$", data, re.M | re.I)
            self.final.setdefault(call_id.group(1) if call_id else data, line[8:11].decode(errors="replace"))

    @property
    def answers(self) -> Counter[str]:
        return Counter(self.final.values())


async def malformed_load(port: int, per_s: float, until: asyncio.Event) -> tuple[Prober, Counter[str]]:
    loop = asyncio.get_running_loop()
    transport, prober = await loop.create_datagram_endpoint(Prober, local_addr=("127.0.0.1", 0))
    src = transport.get_extra_info("sockname")[1]
    cases = malformed("127.0.0.1", port, src)
    sent: Counter[str] = Counter()
    start, n, probe = time.monotonic(), 0, 0
    while not until.is_set():
        label, msg = next(cases)
        transport.sendto(msg[:65000], ("127.0.0.1", port))
        sent[label.split("/")[1]] += 1
        n += 1
        if n % max(1, int(per_s)) == 0:
            probe += 1
            prober.probes_sent += 1
            transport.sendto(
                (f"OPTIONS sip:12345@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{src};branch=z9hG4bKp{probe}"
                 f"\r\nMax-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:12345@127.0.0.1>\r\n"
                 f"Call-ID: probe-{probe}@soak\r\nCSeq: {probe} OPTIONS\r\nContent-Length: 0\r\n\r\n").encode(),
                ("127.0.0.1", port))
        await asyncio.sleep(max(0.0, start + n / per_s - time.monotonic()))
    await asyncio.sleep(2)
    transport.close()
    return prober, sent


async def console_load(base: str, per_s: float, until: asyncio.Event) -> Counter[str]:
    codes: Counter[str] = Counter()
    rng = random.Random(7)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client, \
            httpx.AsyncClient(base_url=base, timeout=30) as stranger:  # no session cookie
        r = await client.post("/api/session", json={"username": "soak", "password": PASSWORD})
        codes[f"sign-in {r.status_code}"] += 1
        start, n = time.monotonic(), 0
        while not until.is_set():
            kind = rng.choice(["bad-sign-in", "list", "search", "export", "metrics", "live"])
            try:
                if kind == "bad-sign-in":
                    r = await stranger.post(
                        "/api/session", json={"username": rng.choice(["soak", "admin", "x" * 64]), "password": "no"})
                elif kind == "list":
                    r = await client.get("/api/tickets", params={"limit": 50})
                elif kind == "search":
                    r = await client.get("/api/tickets", params={"q": rng.choice(["暖气", "噪音", "停车"])})
                elif kind == "export":
                    r = await client.get("/api/export.csv")
                elif kind == "metrics":
                    r = await client.get("/metrics")
                else:
                    r = await client.get("/api/live")
                codes[f"{kind} {r.status_code}"] += 1
            except httpx.HTTPError as exc:
                codes[f"{kind} {type(exc).__name__}"] += 1
            n += 1
            await asyncio.sleep(max(0.0, start + n / per_s - time.monotonic()))
    return codes


def ticket_states(db: Path) -> Counter[str]:
    with sqlite3.connect(db) as conn:
        return Counter({f"{k}/{t}": n for k, t, n in conn.execute(
            "SELECT kind, transcription, count(*) FROM tickets GROUP BY kind, transcription")})


async def run(args: argparse.Namespace, work: Path) -> None:
    data = work / "data"
    prompts = args.prompts
    catalogue = load_catalogue(REPO / "prompts" / "catalogue.yaml")
    render_catalogue(catalogue, prompts)  # only what changed since the last run
    data.mkdir(parents=True)
    UserStore(TicketStore(f"sqlite:///{data / 'ivr.db'}").engine).add("soak", PASSWORD, "supervisor")
    sip, web = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    env = {**os.environ, "IVR_DATA_DIR": str(data), "IVR_PROMPTS_CACHE": str(prompts), "IVR_SIP_HOST": "127.0.0.1",
           "IVR_SIP_PORT": str(sip), "IVR_CONSOLE_PORT": str(web), "IVR_RTP_PORT_MIN": "20000",
           "IVR_RTP_PORT_MAX": "29999"}
    log = (work / "serve.log").open("w")
    server = subprocess.Popen([str(Path(sys.executable).parent / "ivr"), "serve", "--drain", "30", *args.serve_args],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{web}"
    await wait_until_serving(base, server, work / "serve.log", tries=600)
    await asyncio.sleep(2)
    before, fds_before = proc_stats(server.pid), fd_targets(server.pid)
    fixtures = sorted(Path(args.audio).glob("c0*.wav"))[:4] or sorted((REPO / "audio_fixtures" / "zh").glob("c0*.wav"))
    intro_ms = duration_ms(PromptLibrary(catalogue, prompts).get("complaint_intro"))
    complaints = int(args.calls * 0.55)
    per_fixture = complaints // len(fixtures)
    share = per_fixture / args.calls
    loads = [sipp_load(f"complaint-{f.stem}", complaint_xml(work, f, intro_ms), sip, per_fixture,
                       args.cps * share, work) for f in fixtures]
    silent = args.calls - per_fixture * len(fixtures)
    loads.append(sipp_load("silent", silent_xml(), sip, silent, args.cps * silent / args.calls, work))
    until = asyncio.Event()
    t0 = time.monotonic()
    side = asyncio.gather(malformed_load(sip, args.malformed_per_s, until),
                          console_load(base, args.console_per_s, until))
    results = await asyncio.gather(*loads)
    until.set()
    (prober, sent), codes = await side
    duration = time.monotonic() - t0
    await asyncio.sleep(args.settle)
    after, fds_after = proc_stats(server.pid), fd_targets(server.pid)
    counters = metric_lines(base, ("ivr_sip_", "ivr_media_clock", "ivr_log_lines_suppressed"))
    server.send_signal(signal.SIGINT)
    try:
        exit_code = server.wait(timeout=120)
    except subprocess.TimeoutExpired:
        server.kill()
        exit_code = server.wait()
    log.close()
    text = (work / "serve.log").read_text(errors="replace")

    print(f"soak: {args.calls} SIPp calls at {args.cps}/s, {sum(sent.values())} malformed INVITEs at "
          f"{args.malformed_per_s}/s, console at {args.console_per_s}/s; {duration:.0f} s")
    for name, rc, out in results:
        print(f"  sipp {name:22} rc={rc}  {sipp_summary(out)}")
    print(f"  malformed by class: {dict(sent)}")
    print(f"  final answers to malformed, one per Call-ID: {dict(sorted(prober.answers.items()))}")
    print(f"  liveness: {prober.probes_answered}/{prober.probes_sent} OPTIONS probes answered")
    print(f"  console: {dict(sorted(codes.items()))}")
    print(f"  tickets: {dict(sorted(ticket_states(data / 'ivr.db').items()))}")
    lines = text.splitlines()
    print(f"  server log: {len(lines)} lines, {text.count('Traceback')} tracebacks, "
          f"{sum(' ERROR ' in x or 'ERROR:' in x for x in lines)} ERROR, "
          f"{sum(' WARNING ' in x or 'WARNING:' in x for x in lines)} WARNING; exit code {exit_code}")
    for k in ("rss_kb", "peak_kb", "fds", "threads"):
        print(f"  {k:8} before {before[k]:8}  after {after[k]:8}")
    print(f"  fds gained: {dict(fds_after - fds_before)}, lost: {dict(fds_before - fds_after)}")
    print("  server counters:\n    " + "\n    ".join(counters))
    if text.count("Traceback"):
        first = text.index("Traceback")
        print("  first traceback:\n" + text[max(0, first - 300): first + 1500])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--cps", type=float, default=14.0, help="SIPp calls per second in all")
    ap.add_argument("--malformed-per-s", type=float, default=3.0)
    ap.add_argument("--console-per-s", type=float, default=5.0)
    ap.add_argument("--settle", type=float, default=45.0, help="seconds after the last caller before 'after'")
    ap.add_argument("--audio", default=str(REPO.parent / "shared" / "audio" / "zh"),
                    help="folder of caller complaints c0*.wav (first 4 used; default the shared ones, else the fixtures)")
    ap.add_argument("--prompts", type=Path, default=REPO / "var" / "prompts",
                    help="prompt cache, rendered here first if out of date (default ./var/prompts, as setup.sh)")
    ap.add_argument("--keep", type=Path, help="keep the run's data, logs and scenarios here")
    ap.add_argument("serve_args", nargs="*", help="extra `ivr serve` arguments (after --)")
    args = ap.parse_args()
    if shutil.which("sipp") is None:
        raise SystemExit("sipp is not installed (apt-get install sip-tester)")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        asyncio.run(run(args, args.keep))
    else:
        with tempfile.TemporaryDirectory() as d:
            asyncio.run(run(args, Path(d)))


if __name__ == "__main__":
    main()
