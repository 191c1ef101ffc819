"""Recordings are never overwritten: the writer only creates new files, and a ticket's recording is named after its
number, so two calls with the same Call-ID (a caller chooses it) still get a file each."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import pytest

from asr.audio import read_wav
from ivr.call import CallRecord
from ivr.media.recording import HEADER_BYTES, RecordingWriter
from ivr.tickets.sink import StoreSink
from ivr.tickets.store import TicketStore


def test_an_existing_file_is_never_opened_for_writing(tmp_path: Path) -> None:
    path = tmp_path / "20261128" / "20261128001.wav"
    first = RecordingWriter(path)
    first.write(b"\x01\x00" * 160)
    sha = first.close()
    with pytest.raises(FileExistsError) as caught:
        RecordingWriter(path)
    assert str(caught.value) == f"[Errno 17] a recording is never overwritten: '{path}'"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha and read_wav(path) == b"\x01\x00" * 160


def test_the_header_is_on_disk_before_the_first_frame(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path / "r.wav")
    assert (tmp_path / "r.wav").stat().st_size == HEADER_BYTES
    writer.close()


def test_calls_with_the_same_call_id_get_one_recording_each(tmp_path: Path) -> None:
    store = TicketStore(f"sqlite:///{tmp_path / 'ivr.db'}")
    sink = StoreSink(store, tmp_path / "rec", node="n1")
    started = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
    opened = []
    for i in range(4):
        call = CallRecord("same-call-id@10.0.0.9", "13800138000", started)
        rec = sink.open(call, "complaint")
        assert rec.writer is not None and not rec.problem
        rec.writer.write(bytes([i + 1, 0]) * 160)
        rec.writer.close()
        opened.append(rec)
    paths = [rec.writer.path for rec in opened if rec.writer is not None]
    assert len(set(paths)) == 4
    for rec, path in zip(opened, paths):
        ticket = store.get(rec.ticket)
        assert ticket.node == "n1" and ticket.call_id == "same-call-id@10.0.0.9"
        n = ticket.number
        assert path == tmp_path / "rec" / f"{n[:4]}-{n[4:6]}-{n[6:8]}" / f"{n}.wav"
        assert store.recording_file(ticket, tmp_path / "rec") == path
