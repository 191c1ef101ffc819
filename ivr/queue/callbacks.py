"""Durable callbacks in SQLite (SQLAlchemy Core): booked before the caller is told, claimed with a lease, retried.

States: pending -> dialling (claimed, attempt counted, lease) -> done | pending (retry later) | failed.
A claim is one conditional UPDATE, so two workers (or a worker restarted after SIGKILL) never both own a callback.
The worker renews its lease while the dial or the bridge goes on; a callback whose lease expired while `dialling`
(the worker died during the attempt, outcome unknown) is taken back by any running worker (`recover`, run
periodically) and goes back to pending at its place, marked `interrupted`; every other pending callback is dialled
exactly once per attempt.
"""
from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ivr.config import Settings
from ivr.logs import mask_number
from ivr.queue.centre import migrate
from ivr.queue.model import QueueError
from ivr.storage import BEIJING, database_location, has_room

__all__ = ["Callback", "CallbackStore", "RetryPolicy", "CallingHours", "CallbackNotFound", "open_engine",
           "lease_owner", "callbacks_url", "queue_url"]

log = logging.getLogger(__name__)

PENDING, DIALLING, DONE, FAILED = "pending", "dialling", "done", "failed"
ROOM_BYTES = 1 << 20  # the free space below which a callback is not offered (it could not be stored)

metadata = sa.MetaData()
callbacks = sa.Table(
    "queue_callbacks", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket", sa.String(64), nullable=False, default=""),
    sa.Column("number", sa.String(32), nullable=False),
    sa.Column("grp", sa.String(64), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("entered", sa.Float, nullable=False),
    sa.Column("rank", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, default=PENDING),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=False, default=0.0),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_until", sa.Float, nullable=True),
    sa.Column("last_result", sa.String(32), nullable=False, default=""),
    sa.Column("updated", sa.Float, nullable=False),
    sa.Index("ix_queue_callbacks_status_rank", "status", "rank"),
)


def callbacks_url(data_dir: Path) -> str:
    """The callbacks database of a data folder: its own SQLite file beside the tickets, holding the callbacks and the
    operators' states (`callbacks.db`)."""
    return f"sqlite:///{Path(data_dir) / 'callbacks.db'}"


def queue_url(settings: Settings) -> str:
    """Where the queue's durable state is: the centre's PostgreSQL (`queue_database_url`) shared by its nodes, or
    this node's `callbacks.db`."""
    return settings.queue_database_url or callbacks_url(settings.data_dir)


class CallbackNotFound(QueueError):
    """No callback has this id (or it is not in the expected state)."""


@dataclass(frozen=True)
class Callback:
    id: int
    ticket: str
    number: str
    group: str
    priority: int
    entered: float
    rank: float
    status: str
    attempts: int
    next_attempt_at: float
    last_result: str


@dataclass(frozen=True)
class RetryPolicy:
    """Busy / no answer: try again after `backoff_s[attempt-1]` (last value repeats) up to `max_attempts`."""
    max_attempts: int = 3
    backoff_s: tuple[float, ...] = (300.0, 900.0)

    def delay(self, attempts: int) -> float:
        return self.backoff_s[min(attempts, len(self.backoff_s)) - 1] if self.backoff_s else 0.0


@dataclass(frozen=True)
class CallingHours:
    """When callbacks may be dialled, in the hotline's local time (`tz`, Beijing's by default): within business
    hours [open_h, close_h) and outside the quiet hours [quiet_from_h, quiet_to_h) (which may wrap midnight)."""
    open_h: float = 8.0
    close_h: float = 20.0
    quiet_from_h: float = 12.0
    quiet_to_h: float = 12.0  # empty by default
    tz: tzinfo = BEIJING

    def _hour(self, ts: float) -> float:
        local = datetime.fromtimestamp(ts, self.tz)
        return local.hour + local.minute / 60 + local.second / 3600

    def allowed(self, ts: float) -> bool:
        h = self._hour(ts)
        if not (self.open_h <= h < self.close_h):
            return False
        q0, q1 = self.quiet_from_h, self.quiet_to_h
        quiet = (q0 <= h < q1) if q0 <= q1 else (h >= q0 or h < q1)
        return not quiet

    def next_allowed(self, ts: float) -> float:
        """The first moment at or after `ts` when dialling is allowed (minute resolution)."""
        t = ts
        for _ in range(8 * 24 * 60):
            if self.allowed(t):
                return t
            t = (int(t) // 60 + 1) * 60
        raise QueueError("calling hours never allow dialling")


class CallbackStore:
    """The callbacks table. `url` is an SQLAlchemy URL (e.g. sqlite:////var/lib/ivr/callbacks.db)."""

    def __init__(self, url: str, clock=time.time, policy: RetryPolicy | None = None,
                 hours: CallingHours | None = None, room_bytes: int = ROOM_BYTES) -> None:
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.hours = hours
        self.room_bytes = room_bytes
        self.engine = open_engine(url)
        metadata.create_all(self.engine)

    def has_room(self) -> bool:
        """Whether a callback can be booked now: the disk of an SQLite store has `room_bytes` free (a server's
        store is trusted until a booking fails). Check before offering a callback."""
        if self.engine.dialect.name != "sqlite":
            return True
        return has_room(Path(database_location(self.engine)).parent, self.room_bytes)

    def book(self, number: str, group: str, priority: int, entered: float, rank: float, ticket: str = "") -> int:
        """Store a callback durably (committed, fsynced by SQLite) and return its id. Call before telling the caller."""
        now = self.clock()
        with self.engine.begin() as conn:
            res = conn.execute(callbacks.insert().values(
                ticket=ticket, number=number, grp=group, priority=priority, entered=entered, rank=rank,
                status=PENDING, attempts=0, next_attempt_at=0.0, last_result="", updated=now))
            key = res.inserted_primary_key
            assert key is not None
            cb_id = int(key[0])
        log.info("callback %d booked for %s (ticket %s)", cb_id, mask_number(number), ticket or "-")
        return cb_id

    def get(self, cb_id: int) -> Callback:
        with self.engine.connect() as conn:
            row = conn.execute(callbacks.select().where(callbacks.c.id == cb_id)).first()
        if row is None:
            raise CallbackNotFound(f"no callback {cb_id}")
        return _row(row)

    def outstanding(self) -> list[Callback]:
        """Pending and dialling callbacks in queue order (rank, then booking order): what a restart reloads."""
        with self.engine.connect() as conn:
            rows = conn.execute(callbacks.select().where(callbacks.c.status.in_((PENDING, DIALLING)))
                                .order_by(callbacks.c.rank, callbacks.c.id)).all()
        return [_row(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(callbacks.c.status, sa.func.count()).group_by(callbacks.c.status)).all()
        out = {PENDING: 0, DIALLING: 0, DONE: 0, FAILED: 0}
        out.update({s: int(n) for s, n in rows})
        return out

    def recover(self) -> int:
        """Attempts whose lease expired (their dialler died, in this process or any other sharing the store): back
        to pending at their place, marked interrupted. Safe to run often and from many workers at once: each
        expired attempt is taken back exactly once. Returns how many were taken back."""
        now = self.clock()
        expired = (callbacks.c.status == DIALLING) & (callbacks.c.lease_until < now)
        with self.engine.connect() as conn:  # a read first: most of the time nothing has expired
            if conn.execute(sa.select(callbacks.c.id).where(expired).limit(1)).first() is None:
                return 0
        with self.engine.begin() as conn:
            # the attempt's outcome is unknown: it does not count against the limit and keeps its place
            rows = conn.execute(callbacks.update().where(expired).values(
                status=PENDING, attempts=callbacks.c.attempts - 1, lease_owner=None, lease_until=None,
                last_result="interrupted", updated=now).returning(callbacks.c.id)).all()
        for (cb_id,) in rows:
            log.warning("callback %d: its dialler stopped holding it (lease expired): dialling it again", cb_id)
        return len(rows)

    def renew(self, ids: Iterable[int], owner: str, lease_s: float = 120.0) -> set[int]:
        """Extend `owner`'s leases on these callbacks (dials and bridges still in progress); returns the ids still
        held, so a lease lost meanwhile (this worker stalled past it) shows as missing."""
        wanted = list(ids)
        if not wanted:
            return set()
        now = self.clock()
        with self.engine.begin() as conn:
            rows = conn.execute(callbacks.update().where(
                callbacks.c.id.in_(wanted) & (callbacks.c.status == DIALLING) & (callbacks.c.lease_owner == owner)
            ).values(lease_until=now + lease_s, updated=now).returning(callbacks.c.id)).all()
        return {r[0] for r in rows}

    def claim(self, cb_id: int, owner: str, lease_s: float = 120.0) -> bool:
        """Take this callback for one dial attempt; False when it is not due or someone else holds it."""
        now = self.clock()
        if self.hours is not None and not self.hours.allowed(now):
            return False
        with self.engine.begin() as conn:
            res = conn.execute(callbacks.update().where(
                (callbacks.c.id == cb_id) & (callbacks.c.status == PENDING) & (callbacks.c.next_attempt_at <= now)
            ).values(status=DIALLING, attempts=callbacks.c.attempts + 1, lease_owner=owner,
                     lease_until=now + lease_s, updated=now))
            return res.rowcount == 1

    def claim_next(self, owner: str, lease_s: float = 120.0) -> Callback | None:
        """Claim the due pending callback first in queue order, atomically (one UPDATE ... WHERE id = (SELECT ...))."""
        now = self.clock()
        if self.hours is not None and not self.hours.allowed(now):
            return None
        first = (sa.select(callbacks.c.id).where((callbacks.c.status == PENDING)
                                                 & (callbacks.c.next_attempt_at <= now))
                 .order_by(callbacks.c.rank, callbacks.c.id).limit(1).scalar_subquery())
        with self.engine.begin() as conn:
            row = conn.execute(callbacks.update().where((callbacks.c.id == first) & (callbacks.c.status == PENDING))
                               .values(status=DIALLING, attempts=callbacks.c.attempts + 1, lease_owner=owner,
                                       lease_until=now + lease_s, updated=now)
                               .returning(*callbacks.c)).first()
        return _row(row) if row is not None else None

    def finish(self, cb_id: int, owner: str, result: str) -> Callback:
        """Record the attempt's result: 'answered' completes; 'busy', 'no_answer', ... retry or fail per policy."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(callbacks.select().where(
                (callbacks.c.id == cb_id) & (callbacks.c.status == DIALLING) & (callbacks.c.lease_owner == owner))).first()
            if row is None:
                raise CallbackNotFound(f"callback {cb_id} is not being dialled by {owner}")
            self._finish_attempt(conn, _row(row), result, now)
        return self.get(cb_id)

    def cancel(self, cb_id: int) -> None:
        with self.engine.begin() as conn:
            res = conn.execute(callbacks.update().where(
                (callbacks.c.id == cb_id) & (callbacks.c.status == PENDING)).values(status=FAILED,
                                                                                   last_result="cancelled"))
        if res.rowcount != 1:
            raise CallbackNotFound(f"no pending callback {cb_id}")

    def _finish_attempt(self, conn: sa.Connection, cb: Callback, result: str, now: float) -> None:
        if result == "answered":
            values: dict[str, object] = {"status": DONE}
        elif cb.attempts >= self.policy.max_attempts:
            values = {"status": FAILED}
            log.warning("callback %d to %s failed after %d attempts (%s), ticket %s", cb.id, mask_number(cb.number),
                        cb.attempts, result, cb.ticket or "-")
        else:
            due = now + self.policy.delay(cb.attempts)
            if self.hours is not None:
                due = self.hours.next_allowed(due)
            values = {"status": PENDING, "next_attempt_at": due}
        conn.execute(callbacks.update().where(callbacks.c.id == cb.id).values(
            last_result=result, lease_owner=None, lease_until=None, updated=now, **values))


def lease_owner(node_id: str) -> str:
    """A lease owner name for one worker process: its node and a token of its own (a restarted process, or
    another process on the node, never passes for it)."""
    return f"{node_id[:48]}/{secrets.token_hex(4)}"


def _row(r: sa.Row) -> Callback:
    m = r._mapping
    return Callback(m["id"], m["ticket"], m["number"], m["grp"], m["priority"], m["entered"], m["rank"], m["status"],
                    m["attempts"], m["next_attempt_at"], m["last_result"])


def open_engine(url: str) -> sa.Engine:
    """An engine for `url`; an SQLite file gets its folder made, WAL, full sync and a 10 s busy wait; the centre's
    PostgreSQL is migrated (its schema is Alembic's) and its connections checked before use (a restarted server)."""
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    elif engine.dialect.name == "postgresql":
        migrate(engine)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()
