"""`ivr serve` end to end: SIPp calls with PCMU audio and RFC 4733 keys, through the shipped flow, to a ticket."""
from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from sippkit import PCMU_EVENTS, SIPP, caller_bye, invite_answered, pause, pcmu_pcap, play, run_sipp, scenario

from asr.audio import duration_ms, read_wav
from ivr.config import Settings
from ivr.hotline.server import serve_hotline
from ivr.hotline.sip_endpoint import server_config
from ivr.tickets import TicketStore
from prompts import PromptLibrary, load_catalogue

pytestmark = [pytest.mark.sipp, pytest.mark.skipif(SIPP is None, reason="sipp is not installed (apt-get install sip-tester)")]

REPO = Path(__file__).resolve().parents[3]
SHARE = Path("/usr/share/sip-tester")


def test_sip_call_through_the_shipped_flow_to_a_ticket(settings: Settings, ko_model_dir: Path, tmp_path: Path) -> None:
    """Caller presses 1 (RFC 4733) during the welcome, waits for the beep, describes the problem, hangs up."""
    settings = dataclasses.replace(settings, vosk_model=str(ko_model_dir), sip_host="127.0.0.1", sip_port=0,
                                   rtp_port_min=43000, rtp_port_max=43999)
    prompts = PromptLibrary(load_catalogue(settings.prompts_catalogue), settings.prompts_cache)
    intro_ms = duration_ms(prompts.get("complaint_intro"))
    speech = read_wav(REPO / "audio_fixtures" / "zh" / "c01.wav")
    xml = scenario(
        "complaint", invite_answered(PCMU_EVENTS), pause(1500), play(SHARE / "dtmf_2833_1.pcap", 600),
        pause(intro_ms + 1500),  # the complaint prompt and the beep
        play(pcmu_pcap(tmp_path / "c01.pcap", speech), duration_ms(speech) + 800), caller_bye(2),
    )

    async def main() -> None:
        stop = asyncio.Event()
        servers = []
        task = asyncio.create_task(serve_hotline(settings, server_config(settings), console=False, stop=stop,
                                                 drain_seconds=5, ready=servers.append))
        while not servers:
            await asyncio.sleep(0.05)
        rc, out = await run_sipp(xml, tmp_path, servers[0].port)
        assert rc == 0, out
        store = TicketStore(settings.database_url)
        for _ in range(300):  # the transcript is finished off the event loop after the BYE
            tickets = store.list()
            if tickets and tickets[0].transcription.value != "recording":
                break
            await asyncio.sleep(0.1)
        stop.set()
        server = await task
        assert not any(server.resources().values())

    asyncio.run(main())
    [ticket] = TicketStore(settings.database_url).list()
    assert ticket.kind == "complaint"
    assert ticket.menu_path[:3] == ("welcome", "main_menu=complaint", "complaint")
    assert ticket.caller == "13800138000"
    assert ticket.transcription.value == "done" and ticket.transcript is not None and ticket.transcript.words
    # the caller's 4.3 s of speech arrived over RTP and was recorded whole
    assert ticket.audio_ms >= duration_ms(speech)
    words = ticket.transcript.words
    assert 3.6 < words[-1].end - words[0].start < 4.6
