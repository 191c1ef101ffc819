"""The audit trail: every change an operator makes to a ticket (who, when, which field, before and after).

Entries are written in the same transaction as the change they describe, so a change without its entry
cannot be committed.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Column, DateTime, ForeignKey, Integer, MetaData, String, Table, Text, insert, select
from sqlalchemy.engine import Connection

from ivr.storage import as_utc

__all__ = ["AuditEntry", "audit_table", "record", "entries", "ACTIONS"]

ACTIONS = ("edit", "word", "dispatch", "reopen", "close", "confirmed", "kb_answer")
"""confirmed: the caller answered yes; kb_answer: the knowledge-base entry a caller was given (the ticket's note)."""


def define(metadata: MetaData) -> Table:
    return Table(
        "audit", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("user", String(64), nullable=False),
        Column("action", String(32), nullable=False),
        Column("field", String(64), nullable=False),
        Column("before", Text, nullable=False),
        Column("after", Text, nullable=False),
    )


audit_table = define(MetaData())


@dataclass(frozen=True)
class AuditEntry:
    """One change: `user` set `field` of the ticket from `before` to `after` at `at` (UTC)."""

    at: datetime
    user: str
    action: str
    field: str
    before: str
    after: str


def record(conn: Connection, ticket_id: int, user: str, action: str, field: str, before: object,
           after: object, at: datetime | None = None) -> None:
    """Write one entry inside the caller's transaction."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if not user:
        raise ValueError("an audit entry needs a user")
    conn.execute(insert(audit_table).values(
        ticket_id=ticket_id, at=at or datetime.now(timezone.utc), user=user, action=action, field=field,
        before="" if before is None else str(before), after="" if after is None else str(after),
    ))


def entries(conn: Connection, ticket_id: int) -> list[AuditEntry]:
    """The ticket's trail, oldest first."""
    q = select(audit_table).where(audit_table.c.ticket_id == ticket_id).order_by(audit_table.c.id)
    return [
        AuditEntry(at=as_utc(r["at"]), user=r["user"], action=r["action"], field=r["field"], before=r["before"],
                   after=r["after"])
        for r in conn.execute(q).mappings()
    ]

