"""Ticket storage with SQLAlchemy: SQLite (WAL) by default, PostgreSQL by URL.

Tickets are written before the caller starts speaking (status "recording") and completed when the recording
ends, so a crash mid-call leaves a ticket pointing at the partial recording.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column, DateTime, Integer, MetaData, String, Table, Text, create_engine, event, func, insert, select, update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from asr.results import Transcript
from ivr.tickets.model import Ticket, TranscriptionStatus

__all__ = ["TicketStore", "TicketNotFound", "metadata", "tickets_table"]

log = logging.getLogger(__name__)

metadata = MetaData()
tickets_table = Table(
    "tickets", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("number", String(32), nullable=False, unique=True),
    Column("day", String(8), nullable=False, index=True),
    Column("seq", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("caller", String(64), nullable=False, default=""),
    Column("call_id", String(128), nullable=False, default=""),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False, default="open", index=True),
    Column("transcription", String(16), nullable=False, index=True),
    Column("menu_path", Text, nullable=False, default="[]"),
    Column("flags", Text, nullable=False, default="[]"),
    Column("recording", Text, nullable=False, default=""),
    Column("recording_sha256", String(64), nullable=False, default=""),
    Column("audio_ms", Integer, nullable=False, default=0),
    Column("transcript", Text, nullable=True),
    Column("text", Text, nullable=False, default=""),
    Column("category", String(64), nullable=False, default=""),
    Column("department", String(128), nullable=False, default=""),
    Column("district", String(32), nullable=False, default=""),
    Column("urgency", String(16), nullable=False, default=""),
    Column("extra", Text, nullable=False, default="{}"),
)


class TicketNotFound(LookupError):
    """No ticket with that number or id."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


class TicketStore:
    """Create, complete and read tickets."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.engine: Engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)

    def create(self, *, caller: str, call_id: str, kind: str, menu_path: list[str], flags: set[str] | list[str],
               recording: str, now: datetime | None = None) -> Ticket:
        """A new ticket with the next number of the day, status recording."""
        now = now or datetime.now(timezone.utc)
        day = now.strftime("%Y%m%d")
        for _ in range(20):
            with self.engine.begin() as conn:
                seq = (conn.execute(select(func.max(tickets_table.c.seq)).where(tickets_table.c.day == day))
                       .scalar() or 0) + 1
                row = dict(
                    number=f"{day}{seq:03d}", day=day, seq=seq, created_at=now, updated_at=now, caller=caller,
                    call_id=call_id, kind=kind, status="open", transcription=TranscriptionStatus.RECORDING.value,
                    menu_path=json.dumps(menu_path, ensure_ascii=False), flags=json.dumps(sorted(flags)),
                    recording=recording,
                )
                try:
                    conn.execute(insert(tickets_table).values(**row))
                except IntegrityError:
                    continue  # another writer took that number; try the next
            return self.get(row["number"])
        raise RuntimeError(f"could not allocate a ticket number for {day}")

    def complete_recording(self, number: str, *, audio_ms: int, sha256: str, transcript: Transcript | None,
                           menu_path: list[str] | None = None) -> Ticket:
        """Store the finished recording and, when there was a recogniser, its transcript."""
        values: dict[str, Any] = dict(audio_ms=audio_ms, recording_sha256=sha256,
                                      updated_at=datetime.now(timezone.utc))
        if menu_path is not None:
            values["menu_path"] = json.dumps(menu_path, ensure_ascii=False)
        if transcript is None:
            values["transcription"] = TranscriptionStatus.PENDING.value
        else:
            values.update(self._transcript_values(transcript))
        return self._update(number, values)

    def set_transcript(self, number: str, transcript: Transcript) -> Ticket:
        return self._update(number, self._transcript_values(transcript))

    def set_transcription_failed(self, number: str, reason: str) -> Ticket:
        ticket = self.get(number)
        extra = dict(ticket.extra, transcription_error=reason)
        return self._update(number, dict(transcription=TranscriptionStatus.FAILED.value,
                                         extra=json.dumps(extra, ensure_ascii=False)))

    @staticmethod
    def _transcript_values(t: Transcript) -> dict[str, Any]:
        return dict(transcript=json.dumps(t.to_dict(), ensure_ascii=False), text=t.text,
                    transcription=TranscriptionStatus.DONE.value, updated_at=datetime.now(timezone.utc))

    def _update(self, number: str, values: dict[str, Any]) -> Ticket:
        with self.engine.begin() as conn:
            res = conn.execute(update(tickets_table).where(tickets_table.c.number == number).values(**values))
            if res.rowcount == 0:
                raise TicketNotFound(f"no ticket {number}")
        return self.get(number)

    def get(self, number: str) -> Ticket:
        with self.engine.connect() as conn:
            row = conn.execute(select(tickets_table).where(tickets_table.c.number == number)).mappings().first()
        if row is None:
            raise TicketNotFound(f"no ticket {number}")
        return _to_ticket(row)

    def list(self, *, limit: int = 50, transcription: str | None = None, kind: str | None = None) -> list[Ticket]:
        """Newest first."""
        q = select(tickets_table).order_by(tickets_table.c.id.desc()).limit(limit)
        if transcription:
            q = q.where(tickets_table.c.transcription == transcription)
        if kind:
            q = q.where(tickets_table.c.kind == kind)
        with self.engine.connect() as conn:
            return [_to_ticket(r) for r in conn.execute(q).mappings()]


def _to_ticket(row: Any) -> Ticket:
    return Ticket(
        id=row["id"], number=row["number"], created_at=row["created_at"], caller=row["caller"],
        call_id=row["call_id"], kind=row["kind"], status=row["status"],
        transcription=TranscriptionStatus(row["transcription"]),
        menu_path=tuple(json.loads(row["menu_path"])), flags=tuple(json.loads(row["flags"])),
        recording=row["recording"], recording_sha256=row["recording_sha256"], audio_ms=row["audio_ms"],
        transcript=Transcript.from_dict(json.loads(row["transcript"])) if row["transcript"] else None,
        category=row["category"], department=row["department"], district=row["district"],
        urgency=row["urgency"], extra=json.loads(row["extra"]),
    )
