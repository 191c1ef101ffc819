"""A caller's recording and ticket through `ivr serve`, over SIPp: calls that all use one caller-chosen Call-ID each
keep their own recording; with the recordings disk or the database's disk full (a real small tmpfs) the caller hears
why, reaches a person, and what can be saved is saved."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from queuekit import suggestion_caller
from sippkit import (PCMU_EVENTS, SIPP, answer_ok, free_udp_port, invite_answered, pause, pcmu_pcap,
                     play, recv, run_sipp, scenario, serving, sipp_media_port)
from typer.testing import CliRunner

from asr.audio import FRAME_BYTES, duration_ms, read_wav
from ivr.cli import app
from ivr.codecs.g711 import ulaw_decode, ulaw_encode
from ivr.config import AgentConfig, Settings
from ivr.hotline.queueing import QueueOptions
from ivr.tickets import TicketStore
from prompts import PromptLibrary, load_catalogue

pytestmark = [pytest.mark.sipp,
              pytest.mark.skipif(SIPP is None, reason="sipp is not installed (apt-get install sip-tester)")]

REPO = Path(__file__).resolve().parents[3]
SHARE = Path("/usr/share/sip-tester")
CALL_ID = "same-call-id@10.0.0.9"


def heard_frames(recording: bytes, speech: bytes) -> int:
    """How many of the caller's 20 ms frames (as PCMU carried them) are in the recording."""
    sent = {ulaw_decode(ulaw_encode(speech[i:i + FRAME_BYTES])) for i in range(0, len(speech) - FRAME_BYTES + 1,
                                                                               FRAME_BYTES)}
    return sum(recording[i:i + FRAME_BYTES] in sent for i in range(0, len(recording), FRAME_BYTES))


def test_concurrent_calls_with_one_call_id_each_keep_their_own_recording(settings: Settings, tmp_path: Path) -> None:
    settings = dataclasses.replace(settings, sip_host="127.0.0.1", sip_port=0, rtp_port_min=45000,
                                   rtp_port_max=45999)
    speeches = [read_wav(REPO / "audio_fixtures" / "zh" / f"q0{i}.wav") for i in range(1, 5)]
    callers = [f"1390000000{i}" for i in range(4)]

    async def call(port: int, i: int) -> tuple[int, str]:
        await asyncio.sleep(0.3 * i)  # all four calls are up at once, each with its own From tag
        work = tmp_path / f"caller{i}"
        work.mkdir()
        xml = suggestion_caller(settings, speeches[i], work / "speech.pcap").replace("13800138000", callers[i])
        return await run_sipp(xml, work, port, extra=["-cid_str", CALL_ID])

    async def main() -> None:
        async with serving(settings) as server:
            for rc, out in await asyncio.gather(*(call(server.port, i) for i in range(4))):
                assert rc == 0, out

    asyncio.run(main())
    store = TicketStore(settings.database_url)
    tickets = sorted(store.list(), key=lambda t: callers.index(t.caller))
    assert [t.caller for t in tickets] == callers and {t.call_id for t in tickets} == {CALL_ID}
    assert all(t.transcription.value == "pending" for t in tickets), [t.transcription for t in tickets]
    result = CliRunner().invoke(app, ["tickets", "verify"], env={"IVR_DATA_DIR": str(settings.data_dir)})
    assert result.exit_code == 0 and "4 of 4 recordings verified" in result.output, result.output
    files = [store.recording_file(t, settings.recordings_dir) for t in tickets]  # type: ignore[arg-type]
    assert len(set(files)) == 4
    for i, (path, speech) in enumerate(zip(files, speeches)):  # each file holds its own caller's voice
        recording = read_wav(path)
        own = heard_frames(recording, speech)
        assert own >= 0.8 * len(speech) // FRAME_BYTES, (i, own)
        assert all(heard_frames(recording, other) < own // 4 for j, other in enumerate(speeches) if j != i)


def on_duty(settings: Settings, tmp_path: Path, operator_port: int) -> tuple[Settings, QueueOptions]:
    """Operators on duty whatever the hour the test runs, and one of them, op1, a SIPp phone at `operator_port`."""
    flow = tmp_path / "hotline.yaml"
    text = (REPO / "flows" / "hotline.yaml").read_text(encoding="utf-8")
    flow.write_text(re.sub(r'open: "\d\d:\d\d", close: "\d\d:\d\d"', 'open: "00:00", close: "23:59"', text),
                    encoding="utf-8")
    op1 = AgentConfig("op1", "Operator 1", f"sip:op1@127.0.0.1:{operator_port}", ("general", "elderly"))
    return dataclasses.replace(settings, flow=flow), QueueOptions(agents=(op1,))


def operator_phone(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A SIPp operator who answers one call, talks 3 s and hangs up."""
    port = free_udp_port()
    proc = subprocess.Popen([str(SIPP), "-sf", str(REPO / "tests" / "ivr" / "queue" / "sipp" / "answer_hold_bye.xml"),
                             "-d", "3000", "-i", "127.0.0.1", "-p", str(port), "-mp", str(sipp_media_port()),
                             "-m", "1", "-nostdin"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    return proc, port


def complaint_then_a_person(settings: Settings, speech: bytes, pcap: Path) -> str:
    """Presses 1, speaks after the beep, then stays on the line until the hotline hangs up (after the operator)."""
    prompts = PromptLibrary(load_catalogue(settings.prompts_catalogue), settings.prompts_cache)
    intro_ms = duration_ms(prompts.get("complaint_intro"))
    return scenario("complaint", invite_answered(PCMU_EVENTS), pause(1500), play(SHARE / "dtmf_2833_1.pcap", 600),
                    pause(intro_ms + 1500), play(pcmu_pcap(pcap, speech), duration_ms(speech)), recv("BYE"),
                    answer_ok())


def full_disk_call(settings: Settings, tmp_path: Path, fill: Callable[[], None]) -> None:
    """One caller leaves a complaint with a disk full (`fill` runs once the server is up) and is put through to op1."""
    operator, port = operator_phone(tmp_path)
    settings, queue = on_duty(settings, tmp_path, port)
    speech = read_wav(REPO / "audio_fixtures" / "zh" / "c01.wav")

    async def main() -> None:
        async with serving(settings, queue) as server:
            fill()
            rc, out = await run_sipp(complaint_then_a_person(settings, speech, tmp_path / "speech.pcap"), tmp_path,
                                     server.port)
            assert rc == 0, out

    try:
        asyncio.run(main())
        assert operator.wait(timeout=60) == 0  # the caller was put through to a person
    finally:
        if operator.poll() is None:
            operator.kill()
            operator.wait()


def one_line_each(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The problems logged (ERROR), after checking no record carried a traceback."""
    assert not [r.getMessage() for r in caplog.records if r.exc_info]
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_recordings_disk_full_the_caller_hears_why_and_reaches_a_person(settings: Settings, tmp_path: Path,
                                                                         small_disks,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    rec = small_disks.mount(tmp_path / "rec", "64k")
    settings = dataclasses.replace(settings, sip_host="127.0.0.1", sip_port=0, rtp_port_min=45000,
                                   rtp_port_max=45999, recordings_dir=rec)
    full_disk_call(settings, tmp_path, lambda: small_disks.fill(rec, leave_bytes=8192))
    [ticket] = TicketStore(settings.database_url).list()
    assert ticket.transcription.value == "pending" and 0 < ticket.audio_ms <= 512
    assert ticket.extra["recording_error"] == f"recordings folder {rec}: disk full"
    assert TicketStore(settings.database_url).verify_recording(ticket.number, rec).ok
    messages = [r.getMessage() for r in caplog.records]
    assert any("the message at complaint was not saved; offering a person" in m for m in messages)
    assert sum("queue_connect agent=op1" in m for m in messages) == 1
    [problem] = one_line_each(caplog)
    assert f"(recordings folder {rec}: disk full)" in problem
    assert not list(tmp_path.rglob("*.tmp"))


def test_database_disk_full_the_message_is_kept_and_the_caller_reaches_a_person(
        settings: Settings, tmp_path: Path, small_disks, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    data = small_disks.mount(tmp_path / "data", "32m")
    settings = dataclasses.replace(settings, sip_host="127.0.0.1", sip_port=0, rtp_port_min=45000,
                                   rtp_port_max=45999, recordings_dir=tmp_path / "rec")
    full_disk_call(settings, tmp_path, lambda: small_disks.fill(data))
    [kept] = (tmp_path / "rec" / "unticketed").rglob("*.wav")
    assert len(read_wav(kept)) >= len(read_wav(REPO / "audio_fixtures" / "zh" / "c01.wav")) * 0.9
    assert json.loads(kept.with_suffix(".json").read_text(encoding="utf-8"))["caller"] == "13800138000"
    messages = [r.getMessage() for r in caplog.records]
    assert sum("queue_connect agent=op1" in m for m in messages) == 1
    assert not any("queue_offer" in m for m in messages)
    problems = one_line_each(caplog)
    assert any(f"(ticket database {data / 'ivr.db'}: disk full)" in m for m in problems), problems
    assert any(f"the message is kept in {kept}" in m for m in problems), problems
    assert len(problems) <= 4, problems  # the call's two lines, and the queue status's at most once
    assert not list(data.rglob("*.tmp"))
