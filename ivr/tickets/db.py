"""The ticket database as the store's parts share it: the engine (SQLite in WAL mode, or PostgreSQL), reading one
ticket, rows to tickets, and the full-text index kept beside the rows."""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, select, text, update
from sqlalchemy.engine import Connection, Engine

from asr.results import Transcript
from ivr.storage import BEIJING, as_utc
from ivr.tickets.model import Ticket, TicketNotFound, TicketRow, TicketStatus, TranscriptionStatus
from ivr.tickets.schema import grams, migrate, sqlite_pragmas, tickets_table

__all__ = ["TicketDb", "Suggester", "utc_now", "utc_or_none", "to_row", "to_ticket"]

Suggester = Callable[[str], dict[str, Any]]  # transcript text -> suggestion dict (see ivr.triage.suggest)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def utc_or_none(t: datetime | None) -> datetime | None:
    return None if t is None else as_utc(t)


class TicketDb:
    """The database of tickets, opened (and migrated) from an SQLAlchemy URL; `suggest` makes the dispatch
    suggestion of a transcript when one arrives; `tz` is the hotline's local time, whose days number the tickets
    and bound a search by date (the `timezone` setting)."""

    def __init__(self, url: str, *, suggest: Suggester | None = None, tz: tzinfo = BEIJING) -> None:
        self.tz = tz
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.suggest = suggest
        self.engine: Engine = create_engine(url)
        self.sqlite = self.engine.dialect.name == "sqlite"
        if self.sqlite:
            event.listen(self.engine, "connect", sqlite_pragmas)
        migrate(self.engine)

    def get(self, number: str) -> Ticket:
        with self.engine.connect() as conn:
            row = conn.execute(select(tickets_table).where(tickets_table.c.number == number)).mappings().first()
        if row is None:
            raise TicketNotFound(f"no ticket {number}")
        return to_ticket(row)

    def _index(self, conn: Connection, tid: int, text_: str) -> None:
        if not self.sqlite:
            return
        conn.execute(text("DELETE FROM tickets_fts WHERE rowid = :id"), {"id": tid})
        uni, bi = grams(text_)
        if uni:
            conn.execute(text("INSERT INTO tickets_fts(rowid, uni, bi) VALUES (:id, :uni, :bi)"),
                         {"id": tid, "uni": uni, "bi": bi})

    @staticmethod
    def _row(conn: Connection, number: str) -> Any:
        row = conn.execute(select(tickets_table).where(tickets_table.c.number == number)).mappings().first()
        if row is None:
            raise TicketNotFound(f"no ticket {number}")
        return row

    @staticmethod
    def _id(conn: Connection, number: str) -> int:
        tid = conn.execute(select(tickets_table.c.id).where(tickets_table.c.number == number)).scalar()
        if tid is None:
            raise TicketNotFound(f"no ticket {number}")
        return int(tid)

    def _update(self, number: str, values: dict[str, Any]) -> Ticket:
        with self.engine.begin() as conn:
            res = conn.execute(update(tickets_table).where(tickets_table.c.number == number).values(**values))
            if res.rowcount == 0:
                raise TicketNotFound(f"no ticket {number}")
        return self.get(number)


def to_row(r: Any) -> TicketRow:
    return TicketRow(
        id=r["id"], number=r["number"], created_at=as_utc(r["created_at"]), caller=r["caller"],
        kind=r["kind"], status=TicketStatus(r["status"]), transcription=TranscriptionStatus(r["transcription"]),
        category=r["category"],
        department=r["department"], district=r["district"], urgency=r["urgency"], text=r["text"],
        audio_ms=r["audio_ms"],
    )


def to_ticket(row: Any) -> Ticket:
    return Ticket(
        id=row["id"], number=row["number"], created_at=as_utc(row["created_at"]), caller=row["caller"],
        call_id=row["call_id"], kind=row["kind"], status=TicketStatus(row["status"]),
        transcription=TranscriptionStatus(row["transcription"]),
        menu_path=tuple(json.loads(row["menu_path"])), flags=tuple(json.loads(row["flags"])),
        recording=row["recording"], recording_sha256=row["recording_sha256"], audio_ms=row["audio_ms"],
        transcript=Transcript.from_dict(json.loads(row["transcript"])) if row["transcript"] else None,
        category=row["category"], department=row["department"], district=row["district"],
        urgency=row["urgency"], extra=json.loads(row["extra"]),
        suggestion=json.loads(row["suggestion"]) if row["suggestion"] else None,
        contact_name=row["contact_name"], callback_number=row["callback_number"], address=row["address"],
        note=row["note"], updated_at=utc_or_none(row["updated_at"]), dispatched_at=utc_or_none(row["dispatched_at"]),
        dispatched_by=row["dispatched_by"], node=row["node"],
        live_transcript=Transcript.from_dict(json.loads(row["live_transcript"])) if row["live_transcript"] else None,
    )
