"""The durable list of post-call transcription jobs: the one path by which a recording is transcribed after its call.

Every finished recording gets a job in the ticket store (`complete_recording` adds it): a ticket recorded without
a transcript (no model, live recognition too busy, recovered after a crash) is transcribed by it, and a ticket with
the call's live transcript gets its final one from the second-pass engine. A worker `claim`s the oldest job with a
lease; a worker that dies leaves its job to be claimed again once the lease runs out, up to `MAX_ATTEMPTS` times.
`finish` commits a result once: the job's state and the ticket's transcript change in one transaction, and only
while the job is still held by the worker that claims to finish it, so a result computed twice after a crash is
stored once.
"""
from __future__ import annotations

import enum
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from asr.results import Transcript
from ivr.tickets.db import utc_now, utc_or_none
from ivr.tickets.lifecycle import TicketLifecycle
from ivr.tickets.model import Ticket, TranscriptionStatus
from ivr.tickets.schema import jobs_table, tickets_table

__all__ = ["JobState", "Job", "JobInfo", "TranscriptionJobs", "MAX_ATTEMPTS"]

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""A job whose worker died this many times is given up (the recording may be what kills it)."""


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Job:
    """A job as a worker holds it."""

    id: int
    ticket_id: int
    number: str
    owner: str
    attempts: int
    lease_until: datetime


@dataclass(frozen=True)
class JobInfo:
    """A ticket's job as the console and the commands show it."""

    state: JobState
    attempts: int
    owner: str
    lease_until: datetime | None
    finished_at: datetime | None
    error: str


class TranscriptionJobs(TicketLifecycle):
    """Queue, claim and commit post-call transcriptions (see the module's docstring)."""

    def complete_recording(self, number: str, **kwargs: Any) -> Ticket:
        """`TicketLifecycle.complete_recording`, and the recording queued for its (final) transcription."""
        ticket = super().complete_recording(number, **kwargs)
        if ticket.recording:
            self.enqueue(number)
        return ticket

    def enqueue(self, number: str) -> bool:
        """Queue the ticket's recording for transcription; False when it already has a job."""
        with self.engine.begin() as conn:
            return self._enqueue(conn, self._id(conn, number))

    def _enqueue(self, conn: Connection, ticket_id: int) -> bool:
        if conn.execute(select(jobs_table.c.id).where(jobs_table.c.ticket_id == ticket_id)).first() is not None:
            return False
        try:
            with conn.begin_nested():
                conn.execute(insert(jobs_table).values(ticket_id=ticket_id, state=JobState.QUEUED.value, attempts=0,
                                                       owner="", created_at=utc_now(), error=""))
        except IntegrityError:  # another writer queued it meanwhile
            return False
        return True

    def enqueue_pending(self) -> int:
        """Queue every ticket waiting for a transcript that has no job (or whose job failed); returns how many."""
        added = 0
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(tickets_table.c.id, jobs_table.c.state).select_from(
                    tickets_table.outerjoin(jobs_table, jobs_table.c.ticket_id == tickets_table.c.id))
                .where(tickets_table.c.transcription == TranscriptionStatus.PENDING.value)).all()
            for tid, state in rows:
                if state is None:
                    added += self._enqueue(conn, tid)
                elif state == JobState.FAILED.value:
                    conn.execute(update(jobs_table).where(jobs_table.c.ticket_id == tid).values(
                        state=JobState.QUEUED.value, attempts=0, owner="", lease_until=None, error=""))
                    added += 1
        return added

    def claim(self, owner: str, lease_s: float, *, pending_only: bool = False, node: str | None = None,
              now: datetime | None = None) -> Job | None:
        """The oldest job nobody holds (queued, or running with its lease run out), now held by `owner` for
        `lease_s`; None when there is none. `pending_only`: only tickets that have no transcript at all; `node`:
        only recordings that node made (or made before nodes were told apart), for a worker that can read no
        other node's disk."""
        while True:
            now = now or utc_now()
            free = or_(jobs_table.c.state == JobState.QUEUED.value,
                       and_(jobs_table.c.state == JobState.RUNNING.value, jobs_table.c.lease_until < now))
            q = (select(jobs_table.c.id, jobs_table.c.ticket_id, jobs_table.c.attempts, tickets_table.c.number)
                 .join(tickets_table, tickets_table.c.id == jobs_table.c.ticket_id).where(free)
                 .order_by(jobs_table.c.id).limit(1))
            if pending_only:
                q = q.where(tickets_table.c.transcription == TranscriptionStatus.PENDING.value)
            if node is not None:
                q = q.where(tickets_table.c.node.in_([node, ""]))
            with self.engine.begin() as conn:
                row = conn.execute(q).first()
                if row is None:
                    return None
                jid, tid, attempts, number = row
                if attempts >= MAX_ATTEMPTS:
                    reason = f"gave up after {attempts} attempts (the worker stopped each time)"
                    if conn.execute(update(jobs_table).where(jobs_table.c.id == jid, free).values(
                            state=JobState.FAILED.value, owner="", finished_at=now, error=reason)).rowcount:
                        self._failed_ticket(conn, tid, reason)
                        log.error("ticket %s: transcription %s", number, reason)
                    continue
                until = now + timedelta(seconds=lease_s)
                taken = conn.execute(update(jobs_table).where(jobs_table.c.id == jid, free).values(
                    state=JobState.RUNNING.value, owner=owner, lease_until=until,
                    attempts=jobs_table.c.attempts + 1)).rowcount
                if taken:
                    return Job(jid, tid, number, owner, attempts + 1, until)
            now = None  # another worker took it first: look again

    def finish(self, job: Job, transcript: Transcript | None) -> bool:
        """Commit the job's result once: the ticket's final transcript (the live one kept beside it) with its
        dispatch suggestion recomputed, or with None nothing to change. False, and nothing written, when the job is
        no longer this worker's (its lease ran out and another took it, or it is done)."""
        values: dict[str, Any] = {}
        if transcript is not None:
            ticket = self.get(job.number)
            values = self._transcript_values(job.number, transcript, {}, previous=ticket.suggestion)
            if ticket.transcript is not None and ticket.live_transcript is None:
                values["live_transcript"] = json.dumps(ticket.transcript.to_dict(), ensure_ascii=False)
        with self.engine.begin() as conn:
            if not self._close(conn, job, JobState.DONE, ""):
                log.warning("ticket %s: a transcription finished after its job was taken over; not stored",
                            job.number)
                return False
            if values:
                conn.execute(update(tickets_table).where(tickets_table.c.id == job.ticket_id).values(**values))
                self._index(conn, job.ticket_id, values["text"])
        return True

    def fail(self, job: Job, reason: str) -> bool:
        """The recording cannot be transcribed (missing, altered, unreadable): the job fails with the reason, and
        so does the ticket's transcription unless it has the call's transcript. False when no longer held."""
        with self.engine.begin() as conn:
            if not self._close(conn, job, JobState.FAILED, reason):
                return False
            self._failed_ticket(conn, job.ticket_id, reason)
        return True

    def _close(self, conn: Connection, job: Job, state: JobState, error: str) -> bool:
        return bool(conn.execute(update(jobs_table).where(
            jobs_table.c.id == job.id, jobs_table.c.state == JobState.RUNNING.value,
            jobs_table.c.owner == job.owner).values(state=state.value, finished_at=utc_now(), error=error)).rowcount)

    def _failed_ticket(self, conn: Connection, ticket_id: int, reason: str) -> None:
        row = conn.execute(select(tickets_table.c.transcript, tickets_table.c.extra)
                           .where(tickets_table.c.id == ticket_id)).first()
        if row is None:
            return
        extra = json.loads(row.extra)
        values: dict[str, Any] = {"updated_at": utc_now()}
        if row.transcript:  # the call's transcript stays; the final one could not be made
            values["extra"] = json.dumps(dict(extra, final_transcription_error=reason), ensure_ascii=False)
        else:
            values["extra"] = json.dumps(dict(extra, transcription_error=reason), ensure_ascii=False)
            values["transcription"] = TranscriptionStatus.FAILED.value
        conn.execute(update(tickets_table).where(tickets_table.c.id == ticket_id).values(**values))

    def job(self, number: str) -> JobInfo | None:
        """The ticket's transcription job, or None when it has none."""
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs_table).where(jobs_table.c.ticket_id == self._id(conn, number))).first()
        if row is None:
            return None
        return JobInfo(JobState(row.state), row.attempts, row.owner, utc_or_none(row.lease_until),
                       utc_or_none(row.finished_at), row.error)

    def job_counts(self) -> dict[str, int]:
        """How many jobs are in each state."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(jobs_table.c.state, func.count()).group_by(jobs_table.c.state)).all()
        return {s.value: 0 for s in JobState} | {state: n for state, n in rows}
