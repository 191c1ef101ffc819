"""A ticket's life on the call path: created before the caller speaks, completed with the recording, transcribed
(now or from the backlog) with its dispatch suggestion, or marked failed with the reason."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from asr.results import Transcript
from ivr.tickets.db import TicketDb, utc_now
from ivr.tickets.model import EDITABLE_FIELDS, Ticket, TicketEditError, TicketStatus, TranscriptionStatus
from ivr.tickets.schema import tickets_table

__all__ = ["TicketLifecycle"]

log = logging.getLogger(__name__)


class TicketLifecycle(TicketDb):
    """Create, complete and transcribe tickets."""

    def create(self, *, caller: str, call_id: str, kind: str, menu_path: list[str], flags: set[str] | list[str],
               recording: str | Callable[[str], str], node: str = "", now: datetime | None = None) -> Ticket:
        """A new ticket with the next number of the day, transcription "recording". `recording` is the WAV's path
        relative to the recordings folder, or a function of the new ticket's number giving it; `node` is the
        node recording it (see `interrupted`)."""
        now = now or utc_now()
        day = now.astimezone(self.tz).strftime("%Y%m%d")  # the hotline's day: a caller hears today's date
        for _ in range(20):
            try:
                with self.engine.begin() as conn:
                    seq = (conn.execute(select(func.max(tickets_table.c.seq)).where(tickets_table.c.day == day))
                           .scalar() or 0) + 1
                    number = f"{day}{seq:03d}"
                    path = recording(number) if callable(recording) else recording
                    conn.execute(insert(tickets_table).values(
                        number=number, day=day, seq=seq, created_at=now, updated_at=now, caller=caller,
                        call_id=call_id, kind=kind, status=TicketStatus.OPEN.value,
                        transcription=TranscriptionStatus.RECORDING.value,
                        menu_path=json.dumps(menu_path, ensure_ascii=False), flags=json.dumps(sorted(flags)),
                        recording=path, node=node,
                    ))
            except IntegrityError:
                continue  # another writer took that number (its transaction is rolled back); try the next
            return self.get(number)
        raise RuntimeError(f"could not allocate a ticket number for {day}")

    def complete_recording(self, number: str, *, audio_ms: int, sha256: str, transcript: Transcript | None,
                           menu_path: list[str] | None = None, flags: Iterable[str] = (),
                           problem: str = "") -> Ticket:
        """Store the finished recording and, when there was a recogniser, its transcript. `flags` are added to the
        ticket's (e.g. "interrupted"); `problem` says why the recording is incomplete (kept in extra)."""
        values: dict[str, Any] = dict(audio_ms=audio_ms, recording_sha256=sha256, updated_at=utc_now())
        if menu_path is not None:
            values["menu_path"] = json.dumps(menu_path, ensure_ascii=False)
        if flags or problem:
            ticket = self.get(number)
            values["flags"] = json.dumps(sorted(set(ticket.flags) | set(flags)))
            if problem:
                values["extra"] = json.dumps(dict(ticket.extra, recording_error=problem), ensure_ascii=False)
        if transcript is None:
            values["transcription"] = TranscriptionStatus.PENDING.value
            return self._update(number, values)
        return self._set_transcript(number, transcript, values)

    def set_transcript(self, number: str, transcript: Transcript) -> Ticket:
        """A transcript made later (the backlog): stored with its dispatch suggestion."""
        return self._set_transcript(number, transcript, {})

    def recording_lost(self, number: str, reason: str) -> Ticket:
        """Nothing of the caller's message could be written (e.g. the recordings disk is full): the ticket stays,
        without a recording, and cannot be transcribed."""
        ticket = self.get(number)
        extra = dict(ticket.extra, transcription_error=f"no recording: {reason}", recording_error=reason)
        return self._update(number, dict(recording="", audio_ms=0, recording_sha256="", updated_at=utc_now(),
                                         transcription=TranscriptionStatus.FAILED.value,
                                         extra=json.dumps(extra, ensure_ascii=False)))

    def set_transcription_failed(self, number: str, reason: str) -> Ticket:
        ticket = self.get(number)
        extra = dict(ticket.extra, transcription_error=reason)
        return self._update(number, dict(transcription=TranscriptionStatus.FAILED.value, updated_at=utc_now(),
                                         extra=json.dumps(extra, ensure_ascii=False)))

    def _set_transcript(self, number: str, t: Transcript, values: dict[str, Any]) -> Ticket:
        values = self._transcript_values(number, t, values)
        with self.engine.begin() as conn:
            tid = self._id(conn, number)
            conn.execute(update(tickets_table).where(tickets_table.c.id == tid).values(**values))
            self._index(conn, tid, t.text)
        return self.get(number)

    def _transcript_values(self, number: str, t: Transcript, values: dict[str, Any],
                           previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The columns a transcript sets: itself, its text, and the dispatch suggestion made from it (fields the
        `previous` suggestion filled in are filled in again)."""
        values = dict(values, transcript=json.dumps(t.to_dict(), ensure_ascii=False), text=t.text,
                      transcription=TranscriptionStatus.DONE.value, updated_at=utc_now())
        if self.suggest is not None and t.text.strip():
            try:
                suggestion = self.suggest(t.text)
            except Exception:  # a broken suggester must never lose a transcript
                log.exception("dispatch suggestion failed for ticket %s", number)
            else:
                values.update(self._suggestion_values(number, suggestion, previous))
        return values

    @staticmethod
    def _prefill(suggestion: Mapping[str, Any]) -> dict[str, str]:
        return {"category": suggestion.get("category", ""), "department": suggestion.get("department", ""),
                "district": suggestion.get("district") or "", "urgency": suggestion.get("urgency_level", "")}

    def _suggestion_values(self, number: str, suggestion: Mapping[str, Any],
                           previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The suggestion, and its values for the fields no operator has set yet (empty, or still what the
        `previous` suggestion filled in)."""
        current = self.get(number)
        values: dict[str, Any] = {"suggestion": json.dumps(suggestion, ensure_ascii=False)}
        if current.status != TicketStatus.OPEN:
            return values
        before = self._prefill(previous) if previous else {}
        for key, value in self._prefill(suggestion).items():
            now = getattr(current, key)
            if not now or (before.get(key) and now == str(before[key])[: EDITABLE_FIELDS[key]]):
                values[key] = str(value)[: EDITABLE_FIELDS[key]]
        return values

    def refresh_suggestion(self, number: str) -> Ticket:
        """Suggest again from the current transcript (after a retrain); operator-set fields are kept."""
        if self.suggest is None:
            raise TicketEditError("no dispatch suggester is configured")
        ticket = self.get(number)
        if not ticket.text.strip():
            raise TicketEditError(f"ticket {number} has no transcript to suggest from")
        return self._update(number, self._suggestion_values(number, self.suggest(ticket.text)))
