"""The ticket as the rest of the product sees it."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from asr.results import Transcript
from ivr.errors import IvrError

__all__ = [
    "TranscriptionStatus", "TicketStatus", "Ticket", "TicketRow", "TicketFilter", "TicketPage",
    "RecordingCheck", "StoredCorrection", "EDITABLE_FIELDS", "TicketNotFound", "TicketEditError",
]


class TranscriptionStatus(enum.StrEnum):
    RECORDING = "recording"  # the caller is still speaking (or the call died while they were)
    PENDING = "pending"  # recorded, waiting for a model (`ivr tickets transcribe --pending`)
    DONE = "done"
    FAILED = "failed"


class TicketStatus(enum.StrEnum):
    OPEN = "open"
    DISPATCHED = "dispatched"
    CLOSED = "closed"


# fields an operator may change, with their maximum length
EDITABLE_FIELDS: dict[str, int] = {
    "category": 64, "department": 128, "district": 32, "urgency": 16, "kind": 32,
    "contact_name": 64, "callback_number": 32, "address": 500, "note": 4000,
}


@dataclass(frozen=True)
class Ticket:
    id: int
    number: str  # digits only, read to the caller digit by digit: YYYYMMDD + sequence
    created_at: datetime
    caller: str
    call_id: str
    kind: str  # complaint | suggestion | ...
    status: TicketStatus
    transcription: TranscriptionStatus
    menu_path: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    recording: str = ""  # path of the WAV, relative to the recordings folder
    recording_sha256: str = ""
    audio_ms: int = 0
    transcript: Transcript | None = None
    category: str = ""
    department: str = ""
    district: str = ""
    urgency: str = ""
    extra: dict[str, object] = field(default_factory=dict)
    suggestion: dict[str, Any] | None = None  # the dispatch suggestion made when the transcript arrived
    contact_name: str = ""
    callback_number: str = ""
    address: str = ""
    note: str = ""
    updated_at: datetime | None = None
    dispatched_at: datetime | None = None
    dispatched_by: str = ""
    node: str = ""  # the node that recorded it
    live_transcript: Transcript | None = None  # the call's own transcript, once a final one replaced it

    @property
    def text(self) -> str:
        return self.transcript.text if self.transcript else ""

    @property
    def spoken_number(self) -> str:
        """The number as a caller hears it: digit by digit in Mandarin (一 is read 幺 on the telephone)."""
        return " ".join("零幺二三四五六七八九"[int(d)] for d in self.number)


@dataclass(frozen=True)
class TicketRow:
    """One line of the ticket list (no transcript words, no suggestion)."""

    id: int
    number: str
    created_at: datetime
    caller: str
    kind: str
    status: TicketStatus
    transcription: TranscriptionStatus
    category: str
    department: str
    district: str
    urgency: str
    text: str
    audio_ms: int


@dataclass(frozen=True)
class TicketFilter:
    """What the list shows: every field is optional; `query` is searched in the transcripts."""

    status: str | None = None
    transcription: str | None = None
    category: str | None = None
    district: str | None = None
    urgency: str | None = None
    kind: str | None = None
    since: date | None = None  # created on or after this day (UTC)
    until: date | None = None  # created on or before this day (UTC)
    query: str | None = None


@dataclass(frozen=True)
class TicketPage:
    rows: tuple[TicketRow, ...]
    total: int
    offset: int
    limit: int


@dataclass(frozen=True)
class RecordingCheck:
    """Whether a ticket's recording is still the file that was written during the call."""

    number: str
    path: str
    ok: bool
    problem: str = ""  # "missing", "checksum mismatch", "no checksum", "outside the recordings folder"
    expected: str = ""
    actual: str = ""


@dataclass(frozen=True)
class StoredCorrection:
    """An operator put this transcript in a category other than the suggested one."""

    ticket_number: str
    at: datetime
    user: str
    text: str
    suggested: str
    category: str


class TicketNotFound(IvrError, LookupError):
    """No ticket with that number or id."""


class TicketEditError(IvrError, ValueError):
    """An operator change that cannot be made; the message says why."""
