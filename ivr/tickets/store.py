"""Ticket storage with SQLAlchemy: SQLite (WAL) by default, PostgreSQL by URL; the schema is kept by Alembic.

Tickets are written before the caller starts speaking (transcription "recording") and completed when the
recording ends, so a crash mid-call leaves a ticket pointing at the partial recording. When a transcript
arrives the dispatch suggestion is computed and stored with it. Operator changes go through `update`,
`correct_word` and `dispatch`, each writing the audit trail in the same transaction.

The store is one object made of its jobs, each in its own module: the database it reads and writes (`db`), a
ticket's life on the call path (`lifecycle`), the post-call transcription jobs (`jobs`), finding tickets (`search`), recordings on disk (`files`), operator
changes with their audit trail (`edits`) and the category corrections they teach the classifier (`corrections`).
"""
from __future__ import annotations

from ivr.tickets.edits import TicketEdits
from ivr.tickets.files import RecordingFiles
from ivr.tickets.jobs import TranscriptionJobs
from ivr.tickets.search import TicketSearch

__all__ = ["TicketStore"]


class TicketStore(TranscriptionJobs, TicketSearch, RecordingFiles, TicketEdits):
    """Create, complete, search and edit tickets."""
