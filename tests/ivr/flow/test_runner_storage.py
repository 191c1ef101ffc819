"""A caller leaving a message while a disk is full (a real small tmpfs): they hear that it could not be saved and are
offered a person; whatever can be saved is saved, the log says in one line what is full, no temporary file stays."""
from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from flow_harness import at, count, fixture, run_call

from asr.audio import read_wav
from ivr.call import CallRecord
from ivr.channel.base import CallInfo, TransferResult
from ivr.channel.file import FileChannel, parse_script
from ivr.flow.runner import FlowRunner
from ivr.logs import MaskingFilter
from ivr.media.callio import CallIO
from ivr.media.recording import HEADER_BYTES
from ivr.storage import BEIJING
from ivr.tickets.sink import StoreSink, unticketed_name
from ivr.tickets.store import TicketStore

COMPLAINT = f"keys:1; say:{fixture('c01')}"


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != "filler")


def logged(text: str) -> str:
    """`text` as the log shows it once phone numbers are masked (a CLI test may have installed the mask)."""
    record = logging.LogRecord("t", logging.ERROR, "", 0, text, None, None)
    MaskingFilter().filter(record)
    return record.getMessage()


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    assert not any(r.exc_info for r in caplog.records)  # one line each, no traceback
    return [logged(r.getMessage()) for r in caplog.records if r.levelno >= logging.ERROR]


def test_recordings_disk_full_keeps_the_ticket_without_audio_and_offers_a_person(
        hotline, library, small_disks, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rec = small_disks.mount(tmp_path / "recordings", "64k")
    small_disks.fill(rec)
    call = run_call(hotline, library, COMPLAINT, tmp_path)
    assert call.record.path == ["welcome", "main_menu=complaint", "complaint", "general_agent"]
    assert call.record.outcome == "transferred:general" and "message_not_saved" in call.record.flags
    assert count(call.played, library.get("message_not_saved")) == 1
    [ticket] = call.store.list()
    assert (ticket.transcription.value, ticket.recording, ticket.audio_ms) == ("failed", "", 0)
    assert ticket.extra["recording_error"] == f"recordings folder {rec}: disk full"
    assert errors(caplog) == [logged(f"ticket {ticket.number}: recording not saved (recordings folder {rec}: "
                                     "disk full); the ticket is kept without audio")]
    assert files(rec) == []  # no empty WAV, no .tmp


def test_a_recording_cut_by_a_full_disk_keeps_what_was_written(hotline, library, fake_engine, small_disks,
                                                                 tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    rec = small_disks.mount(tmp_path / "recordings", "64k")
    small_disks.fill(rec, leave_bytes=8192)  # the header and half a second of audio
    call = run_call(hotline, library, COMPLAINT, tmp_path, engine=fake_engine)
    assert call.record.path[3:] == ["general_agent"]
    assert count(call.played, library.get("message_not_saved")) == 1
    [ticket] = call.store.list()
    wav = rec / ticket.recording
    assert files(rec) == [ticket.recording]
    assert int.from_bytes(wav.read_bytes()[40:44], "little") == wav.stat().st_size - HEADER_BYTES
    assert 0 < ticket.audio_ms == len(read_wav(wav)) // 16 <= 512
    assert call.store.verify_recording(ticket.number, rec).ok
    assert ticket.transcription.value == "done"  # what the recogniser heard until the cut
    assert ticket.extra["recording_error"] == f"recordings folder {rec}: disk full"
    [line] = errors(caplog)
    assert line == logged(f"call t-1: recording cut after {ticket.audio_ms} ms (recordings folder {rec}: disk full); "
                          f"{wav} keeps what was written")


def test_database_disk_full_keeps_the_message_without_a_ticket_and_says_which_file(
        hotline, library, small_disks, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = small_disks.mount(tmp_path / "db", "4m")
    store = TicketStore(f"sqlite:///{db / 'ivr.db'}")
    small_disks.fill(db)
    call = run_call(hotline, library, COMPLAINT, tmp_path, store=store)
    assert call.record.path[3:] == ["general_agent"] and call.record.tickets == []
    assert count(call.played, library.get("message_not_saved")) == 1
    kept = [p for p in (tmp_path / "recordings").rglob("*.wav")]
    assert len(kept) == 1 and kept[0].parent.parent.name == "unticketed"
    assert len(read_wav(kept[0])) >= len(read_wav(fixture("c01")))
    details = json.loads(kept[0].with_suffix(".json").read_text(encoding="utf-8"))
    assert (details["caller"], details["call_id"], details["kind"]) == ("13800138000", "t-1", "complaint")
    assert errors(caplog) == [logged(m) for m in [
        f"call t-1: no ticket stored (ticket database {db / 'ivr.db'}: disk full); recording the message without one",
        f"call t-1 from 138****8000: the message is kept in {kept[0]} ({len(read_wav(kept[0])) // 16} ms), "
        "without a ticket"]]
    assert str(kept[0]) in errors(caplog)[1]  # the file is named in full
    assert not list(db.glob("*.tmp"))


def test_a_message_without_a_ticket_is_filed_under_the_hotlines_day_as_ticket_numbers_are() -> None:
    call = CallRecord("t-1", "13800138000", datetime(2026, 11, 25, 23, 30, tzinfo=timezone.utc))
    assert re.fullmatch(r"unticketed/2026-11-26/073000-[a-z]{12}\.wav", unticketed_name(call, BEIJING))
    assert unticketed_name(call, timezone.utc).startswith("unticketed/2026-11-25/233000-")


def test_out_of_hours_a_message_that_cannot_be_saved_is_not_asked_for_again(hotline, library, small_disks,
                                                                             tmp_path: Path) -> None:
    rec = small_disks.mount(tmp_path / "recordings", "64k")
    small_disks.fill(rec)
    call = run_call(hotline, library, COMPLAINT, tmp_path, clock=at(23))  # no person until 07:00
    assert call.record.path == ["welcome", "main_menu=complaint", "complaint"]
    assert [count(call.played, library.get(p)) for p in ("message_not_saved_later", "message_not_saved",
                                                          "after_hours")] == [1, 0, 0]
    assert call.channel.hung_up_by_system and call.channel.transfers == []
    assert len(call.store.list()) == 1  # the ticket of the one message tried, without audio


class NoOperator(FileChannel):
    """A caller whose transfer finds no operator (the queue's on_fail leads back to leaving a message)."""

    async def transfer(self, target: str) -> TransferResult:
        self.transfers.append(target)
        return TransferResult(ok=False, target=target, reason="no operator signed in")


def test_no_person_either_asks_the_caller_to_call_again_instead_of_looping(hotline, library, small_disks,
                                                                           tmp_path: Path) -> None:
    rec = small_disks.mount(tmp_path / "recordings", "64k")
    small_disks.fill(rec)
    channel = NoOperator(parse_script(COMPLAINT), CallInfo(call_id="t-2", caller="13800138000"))
    store = TicketStore(f"sqlite:///{tmp_path}/ivr.db")
    runner = FlowRunner(hotline, CallIO(channel, None), library, StoreSink(store, rec), clock=at(10))
    record = asyncio.run(runner.run())
    assert record.path == ["welcome", "main_menu=complaint", "complaint", "general_agent", "complaint"]
    assert channel.transfers == ["general"] and channel.hung_up_by_system
    assert count(bytes(channel.played), library.get("message_not_saved_later")) == 1
    assert len(store.list()) == 1  # the second message was not attempted


def test_database_full_by_the_end_of_the_message_keeps_the_recording_for_the_start_up_repair(
        hotline, library, small_disks, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = small_disks.mount(tmp_path / "db", "4m")
    store = TicketStore(f"sqlite:///{db / 'ivr.db'}")

    class FillsWhileRecording(StoreSink):
        def open(self, call, kind):  # type: ignore[no-untyped-def]
            rec = super().open(call, kind)
            small_disks.fill(db)  # the ticket is stored; the disk fills while the caller speaks
            return rec

    channel = FileChannel(parse_script(COMPLAINT), CallInfo(call_id="t-3", caller="13800138000"))
    runner = FlowRunner(hotline, CallIO(channel, None), library, FillsWhileRecording(store, tmp_path / "rec"),
                        clock=at(10))
    record = asyncio.run(runner.run())
    assert record.path[2:] == ["complaint", "general_agent"]
    assert count(bytes(channel.played), library.get("message_not_saved")) == 1
    [ticket] = store.list()
    wav = tmp_path / "rec" / ticket.recording
    assert ticket.transcription.value == "recording" and len(read_wav(wav)) >= len(read_wav(fixture("c01")))
    assert errors(caplog) == [logged(f"ticket {ticket.number}: not completed (ticket database {db / 'ivr.db'}: "
                                     f"disk full); the recording is kept in {wav}")]
