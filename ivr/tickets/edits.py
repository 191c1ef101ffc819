"""Operator changes to a ticket: edits of the editable fields, a corrected transcript word, dispatch, reopen and
close; each writes its audit entries in the same transaction as the change."""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from asr.engine import join_words
from ivr.tickets import audit
from ivr.tickets.corrections import TicketCorrections
from ivr.tickets.db import utc_now
from ivr.tickets.model import EDITABLE_FIELDS, Ticket, TicketEditError, TicketStatus
from ivr.tickets.schema import corrections_table, tickets_table

__all__ = ["TicketEdits"]


class TicketEdits(TicketCorrections):
    """Change tickets as an operator (audited)."""

    def update(self, number: str, user: str, changes: Mapping[str, str], *, action: str = "edit") -> Ticket:
        """Change editable fields; each real change is audited. A category other than the suggested one
        is kept as a correction for retraining the classifier."""
        unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
        if unknown:
            raise TicketEditError(f"fields cannot be edited: {', '.join(unknown)}")
        with self.engine.begin() as conn:
            row = self._row(conn, number)
            values = self._apply(conn, row, user, changes, action)
            if values:
                conn.execute(update(tickets_table).where(tickets_table.c.id == row["id"]).values(**values))
        return self.get(number)

    def _apply(self, conn: Connection, row: Mapping[str, Any], user: str, changes: Mapping[str, str],
               action: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        now = utc_now()
        for name, value in changes.items():
            value = (value or "").strip()
            if len(value) > EDITABLE_FIELDS[name]:
                raise TicketEditError(f"{name} is longer than {EDITABLE_FIELDS[name]} characters")
            if value != row[name]:
                values[name] = value
                audit.record(conn, row["id"], user, action, name, row[name], value, now)
        if "category" in values:
            self._correction(conn, row, user, values["category"], now)
        if values:
            values["updated_at"] = now
        return values

    def correct_word(self, number: str, user: str, index: int, new: str) -> Ticket:
        """Replace word `index` of the transcript (an operator heard it on the recording)."""
        new = new.strip()
        if not new or any(ch.isspace() for ch in new):
            raise TicketEditError("a corrected word must be one word without spaces")
        with self.engine.begin() as conn:
            row = self._row(conn, number)
            if not row["transcript"]:
                raise TicketEditError(f"ticket {number} has no transcript")
            data = json.loads(row["transcript"])
            words = data.get("words", [])
            if not 0 <= index < len(words):
                raise TicketEditError(f"ticket {number} has no word {index}")
            old = words[index]["word"]
            if old == new:
                return self.get(number)
            words[index] = dict(words[index], word=new, conf=1.0, edited_from=old)
            data["text"] = join_words([w["word"] for w in words])
            data["raw_text"] = " ".join(w["word"] for w in words)
            audit.record(conn, row["id"], user, "word", f"word {index}", old, new)
            conn.execute(update(tickets_table).where(tickets_table.c.id == row["id"]).values(
                transcript=json.dumps(data, ensure_ascii=False), text=data["text"], updated_at=utc_now()))
            self._index(conn, row["id"], data["text"])
        return self.get(number)

    def dispatch(self, number: str, user: str, changes: Mapping[str, str] | None = None) -> Ticket:
        """Apply the last changes and hand the ticket to its department."""
        with self.engine.begin() as conn:
            row = self._row(conn, number)
            if row["status"] != TicketStatus.OPEN.value:
                raise TicketEditError(f"ticket {number} is {row['status']}, not open")
            values = self._apply(conn, row, user, changes or {}, "edit")
            category = values.get("category", row["category"])
            department = values.get("department", row["department"])
            if not category or not department:
                raise TicketEditError("a ticket needs a category and a department to be dispatched")
            if "category" not in values and not conn.execute(
                    select(corrections_table.c.id).where(corrections_table.c.ticket_id == row["id"])).first():
                self._correction(conn, row, user, category, utc_now())  # the prefilled category may differ too
            now = utc_now()
            audit.record(conn, row["id"], user, "dispatch", "status", row["status"], TicketStatus.DISPATCHED.value,
                         now)
            values.update(status=TicketStatus.DISPATCHED.value, dispatched_at=now, dispatched_by=user,
                          updated_at=now)
            conn.execute(update(tickets_table).where(tickets_table.c.id == row["id"]).values(**values))
        return self.get(number)

    def set_status(self, number: str, user: str, status: str) -> Ticket:
        """Reopen or close a ticket (supervisors)."""
        action = {TicketStatus.OPEN.value: "reopen", TicketStatus.CLOSED.value: "close"}.get(status)
        if action is None:
            raise TicketEditError(f"status {status!r} cannot be set directly; use dispatch")
        with self.engine.begin() as conn:
            row = self._row(conn, number)
            if row["status"] != status:
                audit.record(conn, row["id"], user, action, "status", row["status"], status)
                conn.execute(update(tickets_table).where(tickets_table.c.id == row["id"]).values(
                    status=status, updated_at=utc_now()))
        return self.get(number)

    def audit(self, number: str) -> list[audit.AuditEntry]:
        with self.engine.connect() as conn:
            return audit.entries(conn, self._id(conn, number))
