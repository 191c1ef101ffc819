"""What one call is to the layers above the media: its record, and the ports the flow uses to keep what callers say.

`CallRecord` is written by the flow runner and the queue's desk and read by the service, the CLI and tests.
`TicketSink` (recordings become tickets) and `TicketLookup` (a ticket number's status) are what the flow needs from
the tickets; `ivr.tickets.sink.StoreSink` and `ivr.tickets.lookup.store_lookup` provide them over a TicketStore.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ivr.media.callio import RecordResult
from ivr.media.recording import RecordingWriter

__all__ = ["CallRecord", "OpenRecording", "SavedRecording", "TicketSink", "TicketLookup"]

TicketLookup = Callable[[str], "str | None"]  # ticket number -> its status ("open", ...), None if unknown


@dataclass
class CallRecord:
    """What happened in one call: the path through the flow, what was heard, how it ended."""

    call_id: str
    caller: str
    started: datetime
    path: list[str] = field(default_factory=list)  # "node" or "node=choice"; set/branch/goto are left out
    flags: set[str] = field(default_factory=set)  # e.g. {"elderly"}
    vars: dict[str, str] = field(default_factory=dict)  # collected digits, set values
    heard: list[dict[str, object]] = field(default_factory=list)
    outcome: str = ""  # "completed" | "caller_hung_up" | "transferred:<target>" | "error"
    priority: str = ""  # the queue priority of a transfer: normal | elderly | urgent
    tickets: list[str] = field(default_factory=list)
    flow_digest: str = ""  # which version of the flow file the call ran


@dataclass(frozen=True)
class OpenRecording:
    """A message about to be recorded: its ticket ("" when none could be stored), the writer of its audio (None
    when nothing can be written) and what could not be stored ("" when all is well)."""

    ticket: str
    writer: RecordingWriter | None
    problem: str = ""


@dataclass(frozen=True)
class SavedRecording:
    """How a message was kept: `urgent` when it is an emergency to put through now; `problem` says what could not
    be stored ("" when all of it was)."""

    urgent: bool = False
    problem: str = ""


class TicketSink(Protocol):
    """Where recordings become tickets; `open` runs before recording starts, so a crash keeps the ticket."""

    def open(self, call: CallRecord, kind: str) -> OpenRecording: ...

    def finish(self, rec: OpenRecording, call: CallRecord, result: RecordResult | None) -> SavedRecording:
        """Store the finished recording (`result` None: nothing was recorded)."""
