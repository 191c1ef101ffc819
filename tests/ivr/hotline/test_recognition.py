"""Live recognition full: a caller answers by keys (told so once), their complaint is recorded and transcribed
after the call by the server's transcription worker (the job list), with the real Vosk engine; and what the node publishes."""
from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

from asr.audio import duration_ms, read_wav
from asr.load import Reservation
from ivr.channel.base import CallInfo
from ivr.channel.file import FileChannel, parse_script
from ivr.config import Settings
from ivr.hotline.recognition import LiveRecognition, RecognitionCollector, read_status, status_path
from ivr.hotline.service import HotlineService
from ivr.hotline.transcription import run_worker_thread

REPO = Path(__file__).resolve().parents[3]
C01 = REPO / "audio_fixtures" / "zh" / "c01.wav"


def fill(live: LiveRecognition) -> list[Reservation]:
    """Other calls take every place, the priority reserve included."""
    held = []
    while (r := live.admission.admit(priority=True)) is not None:
        held.append(r)
    return held


def complaint_call(service: HotlineService, call_id: str) -> FileChannel:
    channel = FileChannel(parse_script(f"keys:1; say:{C01}"), CallInfo(call_id=call_id, caller="13800138000"))
    asyncio.run(service.handle_call(channel))
    return channel


def test_a_caller_beyond_capacity_gets_keys_and_a_ticket_transcribed_after_the_call(
        settings: Settings, ko_model_dir: Path) -> None:
    settings = dataclasses.replace(settings, vosk_model=str(ko_model_dir), asr_live_limit=2)
    service = HotlineService.from_settings(settings)
    live = service.recognition
    assert live is not None and live.admission.limit == 2
    held = fill(live)
    assert len(held) == 2 + settings.asr_live_reserve
    shed, shed_priority = live.admission.shed, live.admission.shed_priority
    channel = complaint_call(service, "shed-1")
    keys_only = service.prompts.get("keys_only")
    assert bytes(channel.played).count(keys_only[:3200]) == 1  # told once, at the first menu
    [ticket] = service.store.list()
    assert ticket.kind == "complaint" and ticket.transcription.value == "pending"  # recorded whole, not decoded
    assert ticket.audio_ms >= duration_ms(read_wav(C01))
    assert (live.admission.shed - shed, live.admission.shed_priority - shed_priority) == (2, 1)  # menu, complaint
    assert live.scheduler.stats.total_jobs == 0  # nothing of this call reached a decoder

    async def backlog_while_full_then_free() -> int:
        stop = asyncio.Event()
        worker = asyncio.create_task(run_worker_thread(service.store, service.engine, settings, stop,  # type: ignore[arg-type]
                                                       live.admission.spare, idle_s=0.05))
        await asyncio.sleep(0.3)
        assert service.store.get(ticket.number).transcription.value == "pending"  # no room to spare: it waits
        for r in held:
            r.release()
        while service.store.get(ticket.number).transcription.value == "pending":
            await asyncio.sleep(0.05)
        stop.set()
        return await worker

    assert asyncio.run(backlog_while_full_then_free()) == 1
    done = service.store.get(ticket.number)
    assert done.transcription.value == "done" and done.transcript is not None and done.transcript.words


def test_a_caller_with_room_speaks_and_the_node_publishes_its_load(settings: Settings, ko_model_dir: Path,
                                                                     tmp_path: Path) -> None:
    settings = dataclasses.replace(settings, vosk_model=str(ko_model_dir))
    service = HotlineService.from_settings(settings)
    live = service.recognition
    assert live is not None
    channel = complaint_call(service, "live-1")
    assert bytes(channel.played).count(service.prompts.get("keys_only")[:3200]) == 0
    [ticket] = service.store.list()
    assert ticket.transcription.value == "done" and live.admission.shed == 0 and live.admission.admitted >= 2
    assert live.scheduler.stats.total_jobs > 0 and live.replies.count >= 1  # the complaint, then "thanks"

    async def publish_once() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(live.publish(status_path(tmp_path), stop, every_s=0.01))
        while read_status(status_path(tmp_path)) is None:
            await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(publish_once())
    status = read_status(status_path(tmp_path))
    assert status is not None and status["admitted"] == live.admission.admitted and status["shed"] == 0
    names = {m.name for m in RecognitionCollector(live).collect()}
    assert {"ivr_asr_lag_p95_seconds", "ivr_asr_step_decisions", "ivr_reply_seconds"} <= names
    json.dumps(status)
