"""A caller's recording and ticket through `ivr serve`, over SIPp: calls that all use one caller-chosen Call-ID each
keep their own recording."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sippkit import PCMU_EVENTS, SIPP, caller_bye, invite_answered, pause, pcmu_pcap, play, run_sipp, scenario
from typer.testing import CliRunner

from asr.audio import FRAME_BYTES, duration_ms, read_wav
from ivr.cli import app
from ivr.codecs.g711 import ulaw_decode, ulaw_encode
from ivr.commands.serve import serve_hotline, server_config
from ivr.config import Settings
from ivr.tickets import TicketStore
from prompts import PromptLibrary, load_catalogue

pytestmark = [pytest.mark.sipp, pytest.mark.skipif(SIPP is None, reason="sipp is not installed (apt-get install sip-tester)")]

REPO = Path(__file__).resolve().parents[2]
SHARE = Path("/usr/share/sip-tester")
CALL_ID = "same-call-id@10.0.0.9"


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[int]:
    """`ivr serve` without the console on loopback; yields its SIP port, drains and stops on leaving."""
    stop = asyncio.Event()
    servers: list = []
    task = asyncio.create_task(serve_hotline(settings, server_config(settings), console=False, stop=stop,
                                             drain_seconds=5, ready=servers.append))
    while not servers:
        await asyncio.sleep(0.05)
        if task.done():
            task.result()
    try:
        yield servers[0].port
    finally:
        stop.set()
        await task


def suggestion_caller(settings: Settings, speech: bytes, pcap: Path) -> str:
    """Presses 4 (a suggestion) during the welcome, speaks after the beep, hangs up."""
    prompts = PromptLibrary(load_catalogue(settings.prompts_catalogue), settings.prompts_cache)
    intro_ms = duration_ms(prompts.get("suggestion_intro"))
    return scenario("suggestion", invite_answered(PCMU_EVENTS), pause(1500), play(SHARE / "dtmf_2833_4.pcap", 600),
                    pause(intro_ms + 1500), play(pcmu_pcap(pcap, speech), duration_ms(speech) + 300), caller_bye(2))


def heard_frames(recording: bytes, speech: bytes) -> int:
    """How many of the caller's 20 ms frames (as PCMU carried them) are in the recording."""
    sent = {ulaw_decode(ulaw_encode(speech[i:i + FRAME_BYTES])) for i in range(0, len(speech) - FRAME_BYTES + 1,
                                                                               FRAME_BYTES)}
    return sum(recording[i:i + FRAME_BYTES] in sent for i in range(0, len(recording), FRAME_BYTES))


def test_calls_with_one_call_id_each_keep_their_own_recording(settings: Settings, tmp_path: Path) -> None:
    settings = dataclasses.replace(settings, sip_host="127.0.0.1", sip_port=0, rtp_port_min=45000,
                                   rtp_port_max=45999)
    speeches = [read_wav(REPO / "audio_fixtures" / "zh" / f"q0{i}.wav") for i in range(1, 5)]

    async def main() -> None:
        async with serving(settings) as port:
            for i, speech in enumerate(speeches):  # one after another: the UAS refuses a second live dialog
                work = tmp_path / f"caller{i}"
                work.mkdir()
                xml = suggestion_caller(settings, speech, work / "speech.pcap")
                rc, out = await run_sipp(xml, work, port, extra=["-cid_str", CALL_ID])
                assert rc == 0, out

    asyncio.run(main())
    store = TicketStore(settings.database_url)
    tickets = list(reversed(store.list()))
    assert [t.call_id for t in tickets] == [CALL_ID] * 4
    assert all(t.transcription.value == "pending" for t in tickets)
    result = CliRunner().invoke(app, ["tickets", "verify"], env={"IVR_DATA_DIR": str(settings.data_dir)})
    assert result.exit_code == 0 and "4 of 4 recordings verified" in result.output, result.output
    files = [store.recording_file(t, settings.recordings_dir) for t in tickets]  # type: ignore[arg-type]
    assert len(set(files)) == 4
    for i, (path, speech) in enumerate(zip(files, speeches)):  # each file holds its own caller's voice
        recording = read_wav(path)
        own = heard_frames(recording, speech)
        assert own >= 0.8 * len(speech) // FRAME_BYTES, (i, own)
        assert all(heard_frames(recording, other) < own // 4 for j, other in enumerate(speeches) if j != i)
