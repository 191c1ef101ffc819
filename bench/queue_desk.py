"""Queue desk figures: seconds of prompts in the callback booking dialogue, and seconds from a caller pressing 0 to
the operator's phone ringing when an operator is free (a real `ivr serve` with SIPp caller and operator).

    .venv/bin/python bench/queue_desk.py [--reps 3]

Prompts are rendered by espeak-ng (first run renders them into the temp folder). The ring time is measured from
SIPp's own message traces: the caller's ACK plus the scripted pause before its RFC 4733 "0", to the operator's
INVITE arriving.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import re
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "ivr" / "sip"))

from sippkit import (PCMU_EVENTS, answer_ok, free_udp_port, invite_answered, pause, play, recv, run_sipp,  # noqa: E402
                     scenario, sipp_media_port)

from asr.audio import duration_ms  # noqa: E402
from ivr.config import AgentConfig, load_settings  # noqa: E402
from ivr.hotline.queueing import QueueOptions  # noqa: E402
from ivr.hotline.server import serve_hotline  # noqa: E402
from ivr.hotline.sip_endpoint import server_config  # noqa: E402
from prompts import PromptLibrary, load_catalogue  # noqa: E402
from prompts.compose import Digits, Part  # noqa: E402
from prompts.render import render_catalogue  # noqa: E402

PRESS_AFTER_MS = 1500
STAMP = re.compile(r"^-+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)$")


def dialogue_seconds(library: PromptLibrary, style: str) -> dict[str, float]:
    """Seconds of prompts from the offer to 'booked': on the caller ID, and with a keyed number."""
    def secs(*parts: Part) -> float:
        return duration_ms(library.compose(list(parts), style)) / 1000

    offer = secs("callback_offer")
    readback = secs("callback_number_is", Digits("13800138000"), "callback_confirm")
    booked = secs("callback_booked")
    keyed = secs("callback_enter_number") + secs("callback_number_is", Digits("02088886666"), "callback_confirm")
    return {"caller ID": offer + readback + booked, "keyed number": offer + readback + keyed + booked}


def stamps(log: Path, what: str) -> list[datetime]:
    """Times of the messages in a SIPp trace whose first line starts with `what` (e.g. 'INVITE', 'ACK')."""
    out: list[datetime] = []
    lines = log.read_text(errors="replace").splitlines()
    for i, line in enumerate(lines):
        m = STAMP.match(line)
        if m and i + 3 < len(lines) and lines[i + 3].startswith(what):
            out.append(datetime.fromisoformat(m.group(1)))
    return out


async def ring_times(reps: int, work: Path) -> list[float]:
    settings = load_settings(overrides={"data_dir": work / "data", "prompts_cache": work.parent / "prompts"},
                             environ={})
    settings = dataclasses.replace(settings, sip_host="127.0.0.1", sip_port=0, rtp_port_min=45000,
                                   rtp_port_max=45999)
    op_port = free_udp_port()
    op_log = work / "operator.log"
    op = subprocess.Popen(["sipp", "-sf", str(REPO / "tests/ivr/queue/sipp/answer_hold_bye.xml"), "-d", "1000",
                           "-i", "127.0.0.1", "-p", str(op_port), "-mp", str(sipp_media_port()),
                           "-m", str(reps), "-nostdin", "-trace_msg", "-message_file", str(op_log)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
    options = QueueOptions(agents=(AgentConfig("op1", "Operator 1", f"sip:op1@127.0.0.1:{op_port}",
                                               ("general", "elderly")),))
    xml = scenario("press 0", invite_answered(PCMU_EVENTS), pause(PRESS_AFTER_MS),
                   play(Path("/usr/share/sip-tester/dtmf_2833_0.pcap"), 1000), recv("BYE"), answer_ok())
    stop = asyncio.Event()
    servers: list = []
    task = asyncio.create_task(serve_hotline(settings, server_config(settings), console=False, stop=stop,
                                             drain_seconds=5, ready=servers.append, queue=options))
    while not servers:
        await asyncio.sleep(0.05)
    out: list[float] = []
    try:
        for i in range(reps):
            d = work / f"call{i}"
            d.mkdir()
            log = d / "caller.log"
            rc, text = await run_sipp(xml, d, servers[0].port, extra=["-trace_msg", "-message_file", str(log)])
            if rc != 0:
                raise SystemExit(f"caller {i} failed: {text}")
            await asyncio.sleep(12)  # the operator's wrap-up (10 s) before the next caller
            ack = stamps(log, "ACK")[0]
            invite = stamps(op_log, "INVITE")[i]
            out.append((invite - ack).total_seconds() - PRESS_AFTER_MS / 1000)
    finally:
        stop.set()
        await task
        op.kill()
        op.wait()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    catalogue = load_catalogue(REPO / "prompts" / "catalogue.yaml")
    base = Path(tempfile.gettempdir()) / "ivr-bench-queue-desk"
    render_catalogue(catalogue, base / "prompts")
    library = PromptLibrary(catalogue, base / "prompts")
    for style in ("standard", "elderly"):
        figures = ", ".join(f"{k} {v:.1f} s" for k, v in dialogue_seconds(library, style).items())
        print(f"callback booking dialogue ({style} prompts): {figures}")
    transfer = duration_ms(library.get("transfer_agent", "elderly")) / 1000
    work = Path(tempfile.mkdtemp(dir=base))
    times = asyncio.run(ring_times(args.reps, work))
    print(f"pressing 0 to the operator's phone ringing, operator free (n={len(times)}): median "
          f"{statistics.median(times):.2f} s, max {max(times):.2f} s "
          f"(of which the flow's transfer_agent prompt, elderly style: {transfer:.2f} s)")


if __name__ == "__main__":
    main()
