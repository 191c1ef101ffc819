"""What one call is to the layers above the media: its record, and the ports the flow uses to keep what callers say.

`CallRecord` is written by the flow runner and the queue's desk and read by the service, the CLI and tests.
`TicketSink` (recordings become tickets) and `TicketLookup` (a ticket number's status) are what the flow needs from
the tickets; `ivr.tickets.sink.StoreSink` and `ivr.tickets.lookup.store_lookup` provide them over a TicketStore.
"""
from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, Required, TypedDict

from asr.results import Transcript
from ivr.media.callio import RecordResult
from ivr.media.recording import RecordingWriter

__all__ = ["CallRecord", "CallEnd", "HeardEntry", "InputHeard", "RecordingHeard", "NotSavedHeard", "QueueNote",
           "QueueNoteFields", "OpenRecording", "SavedRecording", "TicketSink", "TicketLookup"]

TicketLookup = Callable[[str], "str | None"]  # ticket number -> its status ("open", ...), None if unknown


class CallEnd(enum.StrEnum):
    """How a call ended."""

    COMPLETED = "completed"  # the flow ran to its end (a goodbye, a message left)
    CALLER_HUNG_UP = "caller_hung_up"
    TRANSFERRED = "transferred"  # handed to a person or a queue (`CallRecord.transferred_to`)


class InputHeard(TypedDict, total=False):
    """What the caller answered at a node: keys, speech (with the transcript) or nothing."""

    node: Required[str]
    kind: Required[Literal["dtmf", "speech", "no_input"]]
    t_ms: Required[int]
    digits: str
    text: str
    confidence: float
    intent: str  # a spoken choice: what it was taken for,
    by: str  # how ("keyword", "builtin", "ordinal", "spoken_key" or "meaning": asr.intents.EvidenceKind),
    score: float  # how sure (0..1),
    evidence: str  # and the words that decided it


class RecordingHeard(TypedDict):
    """A message recorded at a node: how long, and why it ended (an `ivr.media.callio.RecordEnd`)."""

    node: str
    kind: Literal["recording"]
    ms: int
    end: str


class NotSavedHeard(TypedDict):
    """A message that could not be saved, and what could not be stored."""

    node: str
    kind: Literal["not_saved"]
    problem: str


class QueueNoteFields(TypedDict, total=False):
    """What a queue step was about."""

    position: int
    minutes: int
    prompts: list[str]
    reason: str
    wait_s: int | None
    callback: int
    problem: str
    agent: str
    waited_s: float
    outcome: str


class QueueNote(QueueNoteFields, total=False):
    """A step of a caller waiting in the queue (`kind` queue_announce, queue_offer, queue_connect ...) with what it
    was about."""

    node: Required[Literal["queue"]]
    kind: Required[str]
    t_ms: Required[int]


HeardEntry = InputHeard | RecordingHeard | NotSavedHeard | QueueNote


@dataclass
class CallRecord:
    """What happened in one call: the path through the flow, what was heard, how it ended."""

    call_id: str
    caller: str
    started: datetime
    path: list[str] = field(default_factory=list)  # "node" or "node=choice"; set/branch/goto are left out
    flags: set[str] = field(default_factory=set)  # e.g. {"elderly"}; "slow", "loud": the caller asked for it
    vars: dict[str, str] = field(default_factory=dict)  # collected digits, set values
    heard: list[HeardEntry] = field(default_factory=list)
    end: CallEnd | None = None  # None while the call goes on
    transferred_to: str = ""  # the person or queue the call was handed to
    priority: str = ""  # the queue priority of a transfer: normal | elderly | urgent
    tickets: list[str] = field(default_factory=list)
    flow_digest: str = ""  # which version of the flow file the call ran

    @property
    def style(self) -> str:
        """The prompt style the caller hears: "elderly" (simpler text, slower and louder), else the standard text
        as they asked for it, "slow", "loud", "slow_loud", or "standard"."""
        if "elderly" in self.flags:
            return "elderly"
        return "_".join(f for f in ("slow", "loud") if f in self.flags) or "standard"

    @property
    def outcome(self) -> str:
        """How the call ended, in a word: "completed", "caller_hung_up", "transferred:<target>" ("" while it goes
        on)."""
        if self.end is CallEnd.TRANSFERRED:
            return f"transferred:{self.transferred_to}"
        return self.end.value if self.end is not None else ""

    def transferred(self, target: str) -> None:
        self.end, self.transferred_to = CallEnd.TRANSFERRED, target


@dataclass(frozen=True)
class OpenRecording:
    """A message about to be recorded: its ticket ("" when none could be stored), the writer of its audio (None
    when nothing can be written) and what could not be stored ("" when all is well)."""

    ticket: str
    writer: RecordingWriter | None
    problem: str = ""


@dataclass(frozen=True)
class SavedRecording:
    """How a message was kept: `urgent` when it is an emergency to put through now; `ask` the hazard its words came
    close to, to ask the caller about (gas, fire ...; "" when none); `problem` says what could not be stored ("" when
    all of it was)."""

    urgent: bool = False
    problem: str = ""
    ask: str = ""


class TicketSink(Protocol):
    """Where recordings become tickets; `open` runs before recording starts, so a crash keeps the ticket."""

    def open(self, call: CallRecord, kind: str) -> OpenRecording: ...

    def finish(self, rec: OpenRecording, call: CallRecord, result: RecordResult | None) -> SavedRecording:
        """Store the finished recording (`result` None: nothing was recorded)."""

    def confirmed_urgent(self, ticket: str, call: CallRecord, hazard: str) -> None:
        """The caller said the ticket's words meant an emergency (`hazard`: gas, fire ...) when asked."""

    def consulted(self, call: CallRecord, question: str, transcript: Transcript | None, entry: str,
                  title: str) -> str:
        """A ticket the caller asked for after a knowledge-base answer: their question (as heard; "" when they chose
        by key) and the entry given. Its number, or "" when it could not be stored."""
