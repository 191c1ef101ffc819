"""Connects the flow runner's recordings to the ticket store.

The ticket is stored first and its recording is named after its number (`<recordings>/<YYYY-MM-DD>/<number>.wav`),
so no two recordings can share a name, and the writer never opens an existing file. Whatever can be saved is
saved: with the ticket database out of room the message is still recorded, under `unticketed/` with the call's
details beside it, and the log names the file; with the recordings disk full the ticket is kept without audio.
Each failure is one log line saying what is full, and the runner offers the caller a person.
"""
from __future__ import annotations

import json
import logging
import secrets
import string
from datetime import tzinfo
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from asr.results import Transcript
from ivr.call import CallRecord, OpenRecording, SavedRecording
from ivr.logs import mask_number
from ivr.media.callio import RecordResult
from ivr.media.recording import RecordingWriter
from ivr.storage import database_location, problem
from ivr.tickets.shelf import RecordingShelf
from ivr.tickets.store import TicketStore

__all__ = ["StoreSink", "recording_name", "unticketed_name", "UNTICKETED", "CONSULT"]

log = logging.getLogger(__name__)

UNTICKETED = "unticketed"  # the folder of messages recorded while no ticket could be stored
CALLER = "caller"  # who a change the caller made by answering is audited as
CONSULT = "consult"  # the kind of a ticket a caller asked for after a knowledge-base answer


def recording_name(number: str) -> str:
    """A ticket's recording, relative to the recordings folder: unique because the ticket number is."""
    return f"{number[:4]}-{number[4:6]}-{number[6:8]}/{number}.wav"


def unticketed_name(call: CallRecord, tz: tzinfo) -> str:
    """Where a message without a ticket goes: the hotline's day and time (`tz`, as ticket numbers have) and random
    letters (no digit run for the log's phone-number mask to hide)."""
    letters = "".join(secrets.choice(string.ascii_lowercase) for _ in range(12))
    local = call.started.astimezone(tz)
    return f"{UNTICKETED}/{local:%Y-%m-%d}/{local:%H%M%S}-{letters}.wav"


class StoreSink:
    """A TicketSink writing to a TicketStore as `node`, recordings under `recordings_dir`; with a `shelf`, each
    finished recording is copied to the centre's shared folder."""

    def __init__(self, store: TicketStore, recordings_dir: Path, node: str = "",
                 shelf: RecordingShelf | None = None) -> None:
        self.store = store
        self.recordings_dir = recordings_dir
        self.node = node
        self.shelf = shelf

    def _db_problem(self, exc: BaseException) -> str:
        return f"ticket database {database_location(self.store.engine)}: {problem(exc)}"

    def _disk_problem(self, exc: BaseException) -> str:
        return f"recordings folder {self.recordings_dir}: {problem(exc)}"

    def open(self, call: CallRecord, kind: str) -> OpenRecording:
        number = ""
        try:
            number = self.store.create(caller=call.caller, call_id=call.call_id, kind=kind, menu_path=call.path,
                                       flags=call.flags, recording=recording_name, node=self.node).number
            path = self.recordings_dir / recording_name(number)
        except (SQLAlchemyError, OSError) as exc:
            trouble = self._db_problem(exc)
            log.error("call %s: no ticket stored (%s); recording the message without one", call.call_id, trouble)
            path = self.recordings_dir / unticketed_name(call, self.store.tz)
            return OpenRecording("", self._unticketed(call, kind, path), trouble)
        try:
            return OpenRecording(number, RecordingWriter(path))
        except OSError as exc:
            trouble = self._disk_problem(exc)
        log.error("ticket %s: recording not saved (%s); the ticket is kept without audio", number, trouble)
        try:
            self.store.recording_lost(number, trouble)
        except (SQLAlchemyError, OSError) as exc:
            log.error("ticket %s: not updated (%s)", number, self._db_problem(exc))
        return OpenRecording(number, None, trouble)

    def _unticketed(self, call: CallRecord, kind: str, path: Path) -> RecordingWriter | None:
        """A writer for a message that has no ticket, with the call's details in a JSON file beside it."""
        try:
            writer = RecordingWriter(path)
            with open(path.with_suffix(".json"), "x", encoding="utf-8") as f:
                json.dump({"caller": call.caller, "call_id": call.call_id, "kind": kind, "node": self.node,
                           "started": call.started.isoformat(), "menu_path": call.path}, f, ensure_ascii=False)
            return writer
        except OSError as exc:
            log.error("call %s: message not recorded either (%s)", call.call_id, self._disk_problem(exc))
            return None

    def finish(self, rec: OpenRecording, call: CallRecord, result: RecordResult | None) -> SavedRecording:
        troubles = [rec.problem] if rec.problem else []
        writer = rec.writer
        cut = self._disk_problem(writer.error) if writer is not None and writer.error is not None else ""
        if cut:
            log.error("call %s: recording cut after %d ms (%s); %s keeps what was written", call.call_id,
                      writer.duration_ms if writer else 0, cut, writer.path if writer else "")
            troubles.append(cut)
        if writer is None or result is None:
            return SavedRecording(problem="; ".join(troubles))
        if not rec.ticket:
            log.error("call %s from %s: the message is kept in %s (%d ms), without a ticket", call.call_id,
                      mask_number(call.caller), writer.path, result.audio_ms)
            return SavedRecording(problem="; ".join(troubles))
        try:
            ticket = self.store.complete_recording(rec.ticket, audio_ms=result.audio_ms, sha256=result.sha256,
                                                   transcript=result.transcript, menu_path=call.path, problem=cut)
        except (SQLAlchemyError, OSError) as exc:
            trouble = self._db_problem(exc)
            log.error("ticket %s: not completed (%s); the recording is kept in %s", rec.ticket, trouble, writer.path)
            return SavedRecording(problem="; ".join([*troubles, trouble]))
        if self.shelf is not None and ticket.recording and result.sha256:
            self.shelf.publish_later(ticket.recording, result.sha256)
        suggestion = ticket.suggestion or {}
        return SavedRecording(bool(suggestion.get("transfer_now")), "; ".join(troubles),
                              ask=str(suggestion.get("urgency_ask") or ""))

    def confirmed_urgent(self, ticket: str, call: CallRecord, hazard: str) -> None:
        """The ticket becomes an emergency, audited as the caller's answer (the operator sees why)."""
        try:
            self.store.update(ticket, CALLER, {"urgency": "emergency"}, action="confirmed")
        except (SQLAlchemyError, OSError) as exc:
            log.error("ticket %s: the caller's confirmed %s not stored (%s)", ticket, hazard, self._db_problem(exc))

    def consulted(self, call: CallRecord, question: str, transcript: Transcript | None, entry: str,
                  title: str) -> str:
        """A ticket of kind "consult" with the caller's question as its transcript (none: chosen by key) and the
        knowledge-base entry given in its note; no recording."""
        heard = transcript or Transcript(question, engine="keys")
        try:
            number = self.store.create(caller=call.caller, call_id=call.call_id, kind=CONSULT, menu_path=call.path,
                                       flags=set(call.flags) | {"kb"}, recording="", node=self.node).number
            self.store.complete_recording(number, audio_ms=0, sha256="", transcript=heard, menu_path=call.path)
            self.store.update(number, CALLER, {"note": f"知识库解答：{title}（{entry}）"}, action="kb_answer")
        except (SQLAlchemyError, OSError) as exc:
            log.error("call %s: the ticket of a knowledge-base answer was not stored (%s)", call.call_id,
                      self._db_problem(exc))
            return ""
        log.info("call %s from %s: ticket %s for knowledge-base entry %s", call.call_id, mask_number(call.caller),
                 number, entry)
        return number
