"""A flood of failed console sign-ins must not cost a live call any audio (issue 12, item 8).

A real `ivr serve` process answers a SIPp caller who presses 1 and speaks for 15 s while 50 clients from 200
loopback addresses send wrong passwords to the console of the same process. The server's media clock must not
skip a tick, the recording must hold all the speech, and the server's memory must stay bounded.
"""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from serveproc import Served, serve
from sippkit import PCMU_EVENTS, SIPP, caller_bye, invite_answered, pause, pcmu_pcap, play, run_sipp, scenario

from asr.audio import duration_ms, read_wav
from ivr.config import load_settings
from ivr.console.users import UserStore
from ivr.tickets import TicketStore
from prompts import PromptLibrary, load_catalogue

pytestmark = [pytest.mark.sipp, pytest.mark.slow,
              pytest.mark.skipif(SIPP is None, reason="sipp is not installed (apt-get install sip-tester)")]

REPO = Path(__file__).resolve().parents[3]
SHARE = Path("/usr/share/sip-tester")
CLIENTS, ADDRESSES = 50, 200


def flood(served: Served, stop: threading.Event) -> Counter[int]:
    """Wrong passwords from CLIENTS clients on ADDRESSES source addresses until `stop`; the answers' statuses."""
    def client(k: int) -> Counter[int]:
        seen: Counter[int] = Counter()
        n = 0
        while not stop.is_set():
            address = f"127.0.0.{2 + (k + n * CLIENTS) % ADDRESSES}"
            conn = http.client.HTTPConnection("127.0.0.1", served.web_port, timeout=60, source_address=(address, 0))
            name = "operator" if n % 4 == 0 else f"guess{k}x{n}"
            try:
                conn.request("POST", "/api/session", json.dumps({"username": name, "password": f"wrong-{n}"}),
                             {"Content-Type": "application/json"})
                seen[conn.getresponse().status] += 1
            finally:
                conn.close()
            n += 1
        return seen

    def yield_cpu() -> None:  # the load generator must not starve the server under test of CPU (2 vCPUs here)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)

    with ThreadPoolExecutor(CLIENTS, initializer=yield_cpu) as pool:
        total: Counter[int] = Counter()
        for seen in pool.map(client, range(CLIENTS)):
            total.update(seen)
    return total


def skip_overloaded(why: str) -> None:
    """This test counts the media clock's stalls: on a machine whose CPUs are oversubscribed by other jobs the
    clock stalls with no console request at all (measured: 3-7 stalls in 27 s at a load average of 12 on 2 vCPUs),
    which says nothing about the console."""
    pytest.skip(f"the machine is overloaded (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs): {why}")


def test_a_sign_in_flood_costs_a_live_call_no_audio(tmp_path: Path, prompt_cache: Path) -> None:
    if os.getloadavg()[0] > 3 * (os.cpu_count() or 1):
        skip_overloaded("the media clock could not be trusted")
    settings = load_settings(overrides={"data_dir": tmp_path / "data", "prompts_cache": prompt_cache}, environ={})
    UserStore(TicketStore(settings.database_url).engine).add("operator", "correct horse 12345", "operator")
    prompts = PromptLibrary(load_catalogue(settings.prompts_catalogue), prompt_cache)
    speech = b"".join(read_wav(REPO / "audio_fixtures" / "zh" / f"c0{i}.wav") for i in range(1, 5))
    intro_ms = duration_ms(prompts.get("complaint_intro"))
    xml = scenario(
        "complaint", invite_answered(PCMU_EVENTS), pause(1500), play(SHARE / "dtmf_2833_1.pcap", 600),
        pause(intro_ms + 1500),
        play(pcmu_pcap(tmp_path / "speech.pcap", speech), duration_ms(speech) + 600), caller_bye(2),
    )

    # The server runs at nice -5 as a PBX runs its media (asterisk -p, freeswitch -hp), so that other jobs on this
    # shared 2-vCPU machine are not counted against the console; the console's threads share that priority.
    with serve(tmp_path, prompt_cache, env={"IVR_RTP_PORT_MIN": "45000", "IVR_RTP_PORT_MAX": "45999"},
               nice=-5) as served:
        rss_before = served.rss_kib()

        async def ticked(count: float, call: asyncio.Task[tuple[int, str]]) -> dict[str, float]:
            """The metrics once the media clock has served `count` ticks (the call is up at the first) or the
            call has ended."""
            while (now := served.metrics()).get("ivr_media_clock_ticks_total", 0) < count and not call.done():
                await asyncio.sleep(0.05)
            return now

        async def call_while_flooded() -> tuple[int, str, dict[str, float], Counter[int]]:
            sipp = asyncio.create_task(run_sipp(xml, tmp_path, served.sip_port))
            up = await ticked(1, sipp)
            # the caller's key and the complaint prompt, without any console request: a machine that stalls the
            # media clock even then is too busy for this test
            before = await ticked(up.get("ivr_media_clock_ticks_total", 0) + (2100 + intro_ms) // 20 - 50, sipp)
            if before.get("ivr_media_clock_stalls_total", 0) > up.get("ivr_media_clock_stalls_total", 0):
                await sipp
                skip_overloaded("the media clock stalled before any console request")
            stop = threading.Event()
            flooding = asyncio.get_running_loop().run_in_executor(None, flood, served, stop)
            rc, out = await sipp
            stop.set()
            return rc, out, before, await flooding

        rc, out, before, answers = asyncio.run(call_while_flooded())
        after = served.metrics()
        peak = served.rss_kib("VmHWM")
        store = TicketStore(settings.database_url)
        for _ in range(100):  # the recording is closed after the BYE
            tickets = store.list()
            if tickets and tickets[0].transcription.value != "recording":
                break
            asyncio.run(asyncio.sleep(0.1))

    assert rc == 0, out
    delta = {k: after[f"ivr_media_clock_{k}_total"] - before[f"ivr_media_clock_{k}_total"]
             for k in ("ticks", "stalls", "missed_ticks", "late_ticks")}
    print(f"\nsign-ins answered {dict(answers)}; clock {delta}, max lateness "
          f"{after['ivr_media_clock_max_lateness_seconds'] * 1000:.0f} ms; RSS {rss_before // 1024} MB before, "
          f"peak {peak // 1024} MB; recording {tickets[0].audio_ms if tickets else None} ms of "
          f"{duration_ms(speech)} ms spoken")
    assert sum(answers.values()) >= 300 and set(answers) <= {401, 429, 503}, answers
    assert delta["ticks"] > duration_ms(speech) // 20
    assert delta["stalls"] == 0 and delta["missed_ticks"] == 0, delta
    [ticket] = tickets
    assert ticket.kind == "complaint" and ticket.audio_ms >= duration_ms(speech), ticket.audio_ms
    assert peak - rss_before < 100 * 1024, (rss_before, peak)
    assert not [line for line in served.output if "Traceback" in line]
