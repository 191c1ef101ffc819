"""Operators' category corrections: kept when an operator files a transcript under another category than the one
suggested, and exported as (transcript, category) pairs to retrain the classifier (`ivr dispatch retrain`)."""
from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from ivr.storage import as_utc
from ivr.tickets.db import TicketDb
from ivr.tickets.model import StoredCorrection
from ivr.tickets.schema import corrections_table, tickets_table

__all__ = ["TicketCorrections"]


class TicketCorrections(TicketDb):
    """The corrections operators made, and the training pairs they give."""

    def _correction(self, conn: Connection, row: Mapping[str, Any], user: str, category: str,
                    now: datetime) -> None:
        suggestion = json.loads(row["suggestion"]) if row["suggestion"] else {}
        suggested = str(suggestion.get("category", ""))
        conn.execute(delete(corrections_table).where(corrections_table.c.ticket_id == row["id"]))
        if category and category != suggested and row["text"].strip():
            conn.execute(insert(corrections_table).values(
                ticket_id=row["id"], at=now, user=user, text=row["text"], suggested=suggested, category=category))

    def corrections(self) -> list[StoredCorrection]:
        """Operators' category corrections, oldest first."""
        q = (select(corrections_table, tickets_table.c.number)
             .join(tickets_table, tickets_table.c.id == corrections_table.c.ticket_id)
             .order_by(corrections_table.c.id))
        with self.engine.connect() as conn:
            return [StoredCorrection(r["number"], as_utc(r["at"]), r["user"], r["text"], r["suggested"], r["category"])
                    for r in conn.execute(q).mappings()]

    def training_pairs(self) -> list[tuple[str, str]]:
        """(transcript, category) of every correction: what `ivr dispatch retrain` learns from."""
        return [(c.text, c.category) for c in self.corrections()]
