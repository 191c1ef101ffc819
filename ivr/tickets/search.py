"""Finding tickets: the newest, those waiting for a model or cut off mid-message, a filtered page of list rows
(full-text search on SQLite, substring match on PostgreSQL), every row for an export, the counts by status."""
from __future__ import annotations

import builtins
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import and_, func, select, text

from ivr.tickets.db import TicketDb, to_row, to_ticket
from ivr.tickets.model import Ticket, TicketFilter, TicketPage, TicketRow, TranscriptionStatus
from ivr.tickets.schema import ROW_COLUMNS, fts_query, tickets_table

__all__ = ["TicketSearch"]


class TicketSearch(TicketDb):
    """Read tickets many at a time."""

    def list(self, *, limit: int = 50, transcription: str | None = None, kind: str | None = None) -> list[Ticket]:
        """Newest first, whole tickets."""
        q = select(tickets_table).order_by(tickets_table.c.id.desc()).limit(limit)
        if transcription:
            q = q.where(tickets_table.c.transcription == transcription)
        if kind:
            q = q.where(tickets_table.c.kind == kind)
        with self.engine.connect() as conn:
            return [to_ticket(r) for r in conn.execute(q).mappings()]

    def pending(self, limit: int | None = None) -> builtins.list[Ticket]:
        """Tickets waiting for transcription, oldest first."""
        q = (select(tickets_table).where(tickets_table.c.transcription == TranscriptionStatus.PENDING.value)
             .order_by(tickets_table.c.id))
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [to_ticket(r) for r in conn.execute(q).mappings()]

    def interrupted(self, before: datetime, node: str | None = None) -> builtins.list[Ticket]:
        """Tickets still "recording" that were created before ``before`` (by ``node`` only, unless None): their
        call died mid-message."""
        q = (select(tickets_table)
             .where(tickets_table.c.transcription == TranscriptionStatus.RECORDING.value,
                    tickets_table.c.created_at < before)
             .order_by(tickets_table.c.id))
        if node is not None:
            q = q.where(tickets_table.c.node == node)
        with self.engine.connect() as conn:
            return [to_ticket(r) for r in conn.execute(q).mappings()]

    def search(self, flt: TicketFilter = TicketFilter(), *, limit: int = 50, offset: int = 0) -> TicketPage:
        """One page of list rows matching the filter, newest first, with the total count."""
        cond = self._where(flt)
        q = select(*ROW_COLUMNS).order_by(tickets_table.c.id.desc()).limit(limit).offset(offset)
        cq = select(func.count()).select_from(tickets_table)
        if cond is not None:
            q, cq = q.where(cond), cq.where(cond)
        with self.engine.connect() as conn:
            rows = tuple(to_row(r) for r in conn.execute(q).mappings())
            if offset == 0 and len(rows) < limit:
                total = len(rows)
            else:
                total = int(conn.execute(cq).scalar_one())
        return TicketPage(rows, total, offset, limit)

    def iter_rows(self, flt: TicketFilter = TicketFilter(), batch: int = 1000) -> Iterator[TicketRow]:
        """Every matching row, newest first (for exports)."""
        cond = self._where(flt)
        last: int | None = None
        while True:
            q = select(*ROW_COLUMNS).order_by(tickets_table.c.id.desc()).limit(batch)
            conds = [c for c in (cond, tickets_table.c.id < last if last is not None else None) if c is not None]
            if conds:
                q = q.where(and_(*conds))
            with self.engine.connect() as conn:
                rows = [to_row(r) for r in conn.execute(q).mappings()]
            yield from rows
            if len(rows) < batch:
                return
            last = rows[-1].id

    def _where(self, flt: TicketFilter) -> Any:
        c = tickets_table.c
        conds: list[Any] = []
        for name in ("status", "transcription", "category", "district", "urgency", "kind"):
            value = getattr(flt, name)
            if value:
                conds.append(c[name] == value)
        if flt.since and flt.since > date.min:  # days on the hotline's clock; from the first day there is: no bound
            conds.append(c.created_at >= datetime.combine(flt.since, time.min, self.tz).astimezone(timezone.utc))
        if flt.until and flt.until < date.max:  # until the last day there is: no bound
            end = datetime.combine(flt.until + timedelta(days=1), time.min, self.tz)
            conds.append(c.created_at < end.astimezone(timezone.utc))
        if flt.query and flt.query.strip():
            if self.sqlite:
                match = fts_query(flt.query)
                if match:
                    conds.append(c.id.in_(text("SELECT rowid FROM tickets_fts WHERE tickets_fts MATCH :m")
                                          .bindparams(m=match)))
            else:
                for part in flt.query.split():
                    escaped = part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                    conds.append(c.text.ilike(f"%{escaped}%", escape="\\"))
        return and_(*conds) if conds else None

    def counts(self) -> dict[str, int]:
        """Tickets by status, for the console header."""
        q = select(tickets_table.c.status, func.count()).group_by(tickets_table.c.status)
        with self.engine.connect() as conn:
            return {s: int(n) for s, n in conn.execute(q)}
