"""The audit trail: entries are validated and written in the same transaction as the change."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from ivr.tickets import audit
from ivr.tickets.model import TicketEditError
from ivr.tickets.store import TicketStore


@pytest.fixture
def store(tmp_path: Path) -> TicketStore:
    return TicketStore(f"sqlite:///{tmp_path / 'ivr.db'}")


def ticket(store: TicketStore) -> tuple[int, str]:
    t = store.create(caller="1", call_id="c", kind="complaint", menu_path=[], flags=[], recording="a.wav")
    return t.id, t.number


def test_entries_are_kept_in_order_with_user_time_before_after(store: TicketStore) -> None:
    tid, number = ticket(store)
    at = datetime(2026, 3, 5, 8, 0, tzinfo=timezone.utc)
    with store.engine.begin() as conn:
        audit.record(conn, tid, "zhang", "edit", "district", "", "朝阳区", at)
        audit.record(conn, tid, "li", "edit", "district", "朝阳区", None)
    first, second = store.audit(number)
    assert first == audit.AuditEntry(at, "zhang", "edit", "district", "", "朝阳区")
    assert (second.user, second.before, second.after) == ("li", "朝阳区", "")
    assert second.at >= first.at


def test_bad_entries_are_refused(store: TicketStore) -> None:
    tid, _ = ticket(store)
    with store.engine.begin() as conn:
        with pytest.raises(ValueError, match="^unknown audit action 'delete'$"):
            audit.record(conn, tid, "zhang", "delete", "x", "", "")
        with pytest.raises(ValueError, match="^an audit entry needs a user$"):
            audit.record(conn, tid, "", "edit", "x", "", "")


def test_a_change_that_fails_leaves_no_entry(store: TicketStore) -> None:
    _, number = ticket(store)
    with pytest.raises(TicketEditError):
        store.update(number, "zhang", {"note": "first", "urgency": "x" * 17})
    assert store.audit(number) == [] and store.get(number).note == ""
    store.update(number, "zhang", {"note": "first"})
    assert [(e.field, e.after) for e in store.audit(number)] == [("note", "first")]
