"""Ticket storage with SQLAlchemy: SQLite (WAL) by default, PostgreSQL by URL; the schema is kept by Alembic.

Tickets are written before the caller starts speaking (transcription "recording") and completed when the
recording ends, so a crash mid-call leaves a ticket pointing at the partial recording. When a transcript
arrives the dispatch suggestion is computed and stored with it. Operator changes go through `update`,
`correct_word` and `dispatch`, each writing the audit trail in the same transaction.
"""
from __future__ import annotations

import builtins
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import and_, create_engine, delete, event, func, insert, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from asr.engine import join_words
from asr.results import Transcript
from ivr.tickets import audit
from ivr.tickets.model import (
    EDITABLE_FIELDS, RecordingCheck, StoredCorrection, Ticket, TicketFilter, TicketPage, TicketRow, TicketStatus,
    TranscriptionStatus,
)
from ivr.tickets.schema import (
    ROW_COLUMNS, corrections_table, fts_query, grams, migrate, sqlite_pragmas, tickets_table,
)

__all__ = ["TicketStore", "TicketNotFound", "TicketEditError", "Suggester"]

log = logging.getLogger(__name__)

Suggester = Callable[[str], dict[str, Any]]  # transcript text -> suggestion dict (see ivr.triage.suggest)


class TicketNotFound(LookupError):
    """No ticket with that number or id."""


class TicketEditError(ValueError):
    """An operator change that cannot be made; the message says why."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(t: datetime | None) -> datetime | None:
    if t is None:
        return None
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


class TicketStore:
    """Create, complete, search and edit tickets."""

    def __init__(self, url: str, *, suggest: Suggester | None = None) -> None:
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.suggest = suggest
        self.engine: Engine = create_engine(url)
        self.sqlite = self.engine.dialect.name == "sqlite"
        if self.sqlite:
            event.listen(self.engine, "connect", sqlite_pragmas)
        migrate(self.engine)

    # --- the call path -------------------------------------------------------------------------------------

    def create(self, *, caller: str, call_id: str, kind: str, menu_path: list[str], flags: set[str] | list[str],
               recording: str | Callable[[str], str], node: str = "", now: datetime | None = None) -> Ticket:
        """A new ticket with the next number of the day, transcription "recording". `recording` is the WAV's path
        relative to the recordings folder, or a function of the new ticket's number giving it; `node` is the
        node recording it (see `interrupted`)."""
        now = now or _now()
        day = now.strftime("%Y%m%d")
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
        values: dict[str, Any] = dict(audio_ms=audio_ms, recording_sha256=sha256, updated_at=_now())
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
        return self._update(number, dict(recording="", audio_ms=0, recording_sha256="", updated_at=_now(),
                                         transcription=TranscriptionStatus.FAILED.value,
                                         extra=json.dumps(extra, ensure_ascii=False)))

    def set_transcription_failed(self, number: str, reason: str) -> Ticket:
        ticket = self.get(number)
        extra = dict(ticket.extra, transcription_error=reason)
        return self._update(number, dict(transcription=TranscriptionStatus.FAILED.value, updated_at=_now(),
                                         extra=json.dumps(extra, ensure_ascii=False)))

    def _set_transcript(self, number: str, t: Transcript, values: dict[str, Any]) -> Ticket:
        values = dict(values, transcript=json.dumps(t.to_dict(), ensure_ascii=False), text=t.text,
                      transcription=TranscriptionStatus.DONE.value, updated_at=_now())
        if self.suggest is not None and t.text.strip():
            try:
                suggestion = self.suggest(t.text)
            except Exception:  # a broken suggester must never lose a transcript
                log.exception("dispatch suggestion failed for ticket %s", number)
            else:
                values.update(self._suggestion_values(number, suggestion))
        with self.engine.begin() as conn:
            tid = self._id(conn, number)
            conn.execute(update(tickets_table).where(tickets_table.c.id == tid).values(**values))
            self._index(conn, tid, t.text)
        return self.get(number)

    def _suggestion_values(self, number: str, suggestion: Mapping[str, Any]) -> dict[str, Any]:
        """The suggestion, and its values for the fields no operator has set yet."""
        current = self.get(number)
        values: dict[str, Any] = {"suggestion": json.dumps(suggestion, ensure_ascii=False)}
        if current.status != TicketStatus.OPEN.value:
            return values
        prefill = {"category": suggestion.get("category", ""), "department": suggestion.get("department", ""),
                   "district": suggestion.get("district") or "", "urgency": suggestion.get("urgency_level", "")}
        for key, value in prefill.items():
            if value and not getattr(current, key):
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

    # --- reading -----------------------------------------------------------------------------------------

    def get(self, number: str) -> Ticket:
        with self.engine.connect() as conn:
            row = conn.execute(select(tickets_table).where(tickets_table.c.number == number)).mappings().first()
        if row is None:
            raise TicketNotFound(f"no ticket {number}")
        return _to_ticket(row)

    def list(self, *, limit: int = 50, transcription: str | None = None, kind: str | None = None) -> list[Ticket]:
        """Newest first, whole tickets."""
        q = select(tickets_table).order_by(tickets_table.c.id.desc()).limit(limit)
        if transcription:
            q = q.where(tickets_table.c.transcription == transcription)
        if kind:
            q = q.where(tickets_table.c.kind == kind)
        with self.engine.connect() as conn:
            return [_to_ticket(r) for r in conn.execute(q).mappings()]

    def pending(self, limit: int | None = None) -> builtins.list[Ticket]:
        """Tickets waiting for transcription, oldest first."""
        q = (select(tickets_table).where(tickets_table.c.transcription == TranscriptionStatus.PENDING.value)
             .order_by(tickets_table.c.id))
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [_to_ticket(r) for r in conn.execute(q).mappings()]

    def interrupted(self, before: datetime, node: str | None = None) -> builtins.list[Ticket]:
        """Tickets still "recording" that were created before ``before`` (by ``node`` only, unless None): their
        call died mid-message."""
        q = (select(tickets_table)
             .where(tickets_table.c.transcription == TranscriptionStatus.RECORDING.value,
                    tickets_table.c.created_at < before)
             .order_by(tickets_table.c.id))
        if node is not None:
            q = q.where(tickets_table.c.node == node)
        with self.engine.connect() as conn:
            return [_to_ticket(r) for r in conn.execute(q).mappings()]

    def search(self, flt: TicketFilter = TicketFilter(), *, limit: int = 50, offset: int = 0) -> TicketPage:
        """One page of list rows matching the filter, newest first, with the total count."""
        cond = self._where(flt)
        q = select(*ROW_COLUMNS).order_by(tickets_table.c.id.desc()).limit(limit).offset(offset)
        cq = select(func.count()).select_from(tickets_table)
        if cond is not None:
            q, cq = q.where(cond), cq.where(cond)
        with self.engine.connect() as conn:
            rows = tuple(_to_row(r) for r in conn.execute(q).mappings())
            if offset == 0 and len(rows) < limit:
                total = len(rows)
            else:
                total = int(conn.execute(cq).scalar_one())
        return TicketPage(rows, total, offset, limit)

    def iter_rows(self, flt: TicketFilter = TicketFilter(), batch: int = 1000) -> Iterator[TicketRow]:
        """Every matching row, newest first (for exports)."""
        cond = self._where(flt)
        last: int | None = None
        while True:
            q = select(*ROW_COLUMNS).order_by(tickets_table.c.id.desc()).limit(batch)
            conds = [c for c in (cond, tickets_table.c.id < last if last is not None else None) if c is not None]
            if conds:
                q = q.where(and_(*conds))
            with self.engine.connect() as conn:
                rows = [_to_row(r) for r in conn.execute(q).mappings()]
            yield from rows
            if len(rows) < batch:
                return
            last = rows[-1].id

    def _where(self, flt: TicketFilter) -> Any:
        c = tickets_table.c
        conds: list[Any] = []
        for name in ("status", "transcription", "category", "district", "urgency", "kind"):
            value = getattr(flt, name)
            if value:
                conds.append(c[name] == value)
        if flt.since:
            conds.append(c.created_at >= datetime.combine(flt.since, time.min, timezone.utc))
        if flt.until and flt.until < date.max:  # until the last day there is: no bound
            conds.append(c.created_at < datetime.combine(flt.until + timedelta(days=1), time.min, timezone.utc))
        if flt.query and flt.query.strip():
            if self.sqlite:
                match = fts_query(flt.query)
                if match:
                    conds.append(c.id.in_(text("SELECT rowid FROM tickets_fts WHERE tickets_fts MATCH :m")
                                          .bindparams(m=match)))
            else:
                for part in flt.query.split():
                    escaped = part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                    conds.append(c.text.ilike(f"%{escaped}%", escape="\\"))
        return and_(*conds) if conds else None

    def counts(self) -> dict[str, int]:
        """Tickets by status, for the console header."""
        q = select(tickets_table.c.status, func.count()).group_by(tickets_table.c.status)
        with self.engine.connect() as conn:
            return {s: int(n) for s, n in conn.execute(q)}

    # --- recordings ----------------------------------------------------------------------------------------

    @staticmethod
    def recording_file(ticket: Ticket, recordings_dir: Path) -> Path:
        """The ticket's WAV, refusing any path that leaves the recordings folder."""
        root = Path(recordings_dir).resolve()
        if not ticket.recording:
            raise TicketNotFound(f"ticket {ticket.number} has no recording")
        path = (root / ticket.recording).resolve()
        if not path.is_relative_to(root) or path == root:
            raise PermissionError(f"ticket {ticket.number}: recording path leaves the recordings folder")
        return path

    def verify_recording(self, number: str, recordings_dir: Path) -> RecordingCheck:
        """Compare the recording's SHA-256 with the one stored when the call ended."""
        t = self.get(number)
        try:
            path = self.recording_file(t, recordings_dir)
        except PermissionError:
            return RecordingCheck(number, t.recording, False, "outside the recordings folder")
        except TicketNotFound:
            return RecordingCheck(number, "", False, "missing")
        if not path.is_file():
            return RecordingCheck(number, str(path), False, "missing", t.recording_sha256)
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if not t.recording_sha256:
            return RecordingCheck(number, str(path), False, "no checksum", "", actual)
        ok = actual == t.recording_sha256
        return RecordingCheck(number, str(path), ok, "" if ok else "checksum mismatch", t.recording_sha256, actual)

    # --- operator changes ----------------------------------------------------------------------------------

    def update(self, number: str, user: str, changes: Mapping[str, str], *, action: str = "edit") -> Ticket:
        """Change editable fields; each real change is audited. A category other than the suggested one
        is kept as a correction for retraining the classifier."""
        unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
        if unknown:
            raise TicketEditError(f"fields cannot be edited: {', '.join(unknown)}")
        with self.engine.begin() as conn:
            row = self._row(conn, number)
            values = self._apply(conn, row, user, changes, action)
            if values:
                conn.execute(update(tickets_table).where(tickets_table.c.id == row["id"]).values(**values))
        return self.get(number)

    def _apply(self, conn: Connection, row: Mapping[str, Any], user: str, changes: Mapping[str, str],
               action: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        now = _now()
        for name, value in changes.items():
            value = (value or "").strip()
            if len(value) > EDITABLE_FIELDS[name]:
                raise TicketEditError(f"{name} is longer than {EDITABLE_FIELDS[name]} characters")
            if value != row[name]:
                values[name] = value
                audit.record(conn, row["id"], user, action, name, row[name], value, now)
        if "category" in values:
            self._correction(conn, row, user, values["category"], now)
        if values:
            values["updated_at"] = now
        return values

    def _correction(self, conn: Connection, row: Mapping[str, Any], user: str, category: str,
                    now: datetime) -> None:
        suggestion = json.loads(row["suggestion"]) if row["suggestion"] else {}
        suggested = str(suggestion.get("category", ""))
        conn.execute(delete(corrections_table).where(corrections_table.c.ticket_id == row["id"]))
        if category and category != suggested and row["text"].strip():
            conn.execute(insert(corrections_table).values(
                ticket_id=row["id"], at=now, user=user, text=row["text"], suggested=suggested, category=category))

    def correct_word(self, number: str, user: str, index: int, new: str) -> Ticket:
        """Replace word `index` of the transcript (an operator heard it on the recording)."""
        new = new.strip()
        if not new or any(ch.isspace() for ch in new):
            raise TicketEditError("a corrected word must be one word without spaces")
        with self.engine.begin() as conn:
            row = self._row(conn, number)
            if not row["transcript"]:
                raise TicketEditError(f"ticket {number} has no transcript")
            data = json.loads(row["transcript"])
            words = data.get("words", [])
            if not 0 <= index < len(words):
                raise TicketEditError(f"ticket {number} has no word {index}")
            old = words[index]["word"]
            if old == new:
                return self.get(number)
            words[index] = dict(words[index], word=new, conf=1.0, edited_from=old)
            data["text"] = join_words([w["word"] for w in words])
            data["raw_text"] = " ".join(w["word"] for w in words)
            audit.record(conn, row["id"], user, "word", f"word {index}", old, new)
            conn.execute(update(tickets_table).where(tickets_table.c.id == row["id"]).values(
                transcript=json.dumps(data, ensure_ascii=False), text=data["text"], updated_at=_now()))
            self._index(conn, row["id"], data["text"])
        return self.get(number)

    def dispatch(self, number: str, user: str, changes: Mapping[str, str] | None = None) -> Ticket:
        """Apply the last changes and hand the ticket to its department."""
        with self.engine.begin() as conn:
            row = self._row(conn, number)
            if row["status"] != TicketStatus.OPEN.value:
                raise TicketEditError(f"ticket {number} is {row['status']}, not open")
            values = self._apply(conn, row, user, changes or {}, "edit")
            category = values.get("category", row["category"])
            department = values.get("department", row["department"])
            if not category or not department:
                raise TicketEditError("a ticket needs a category and a department to be dispatched")
            if "category" not in values and not conn.execute(
                    select(corrections_table.c.id).where(corrections_table.c.ticket_id == row["id"])).first():
                self._correction(conn, row, user, category, _now())  # the prefilled category may differ too
            now = _now()
            audit.record(conn, row["id"], user, "dispatch", "status", row["status"], TicketStatus.DISPATCHED.value,
                         now)
            values.update(status=TicketStatus.DISPATCHED.value, dispatched_at=now, dispatched_by=user,
                          updated_at=now)
            conn.execute(update(tickets_table).where(tickets_table.c.id == row["id"]).values(**values))
        return self.get(number)

    def set_status(self, number: str, user: str, status: str) -> Ticket:
        """Reopen or close a ticket (supervisors)."""
        action = {TicketStatus.OPEN.value: "reopen", TicketStatus.CLOSED.value: "close"}.get(status)
        if action is None:
            raise TicketEditError(f"status {status!r} cannot be set directly; use dispatch")
        with self.engine.begin() as conn:
            row = self._row(conn, number)
            if row["status"] != status:
                audit.record(conn, row["id"], user, action, "status", row["status"], status)
                conn.execute(update(tickets_table).where(tickets_table.c.id == row["id"]).values(
                    status=status, updated_at=_now()))
        return self.get(number)

    def audit(self, number: str) -> builtins.list[audit.AuditEntry]:
        with self.engine.connect() as conn:
            return audit.entries(conn, self._id(conn, number))

    def corrections(self) -> builtins.list[StoredCorrection]:
        """Operators' category corrections, oldest first."""
        q = (select(corrections_table, tickets_table.c.number)
             .join(tickets_table, tickets_table.c.id == corrections_table.c.ticket_id)
             .order_by(corrections_table.c.id))
        with self.engine.connect() as conn:
            return [StoredCorrection(r["number"], _utc(r["at"]), r["user"], r["text"], r["suggested"],  # type: ignore[arg-type]
                                     r["category"]) for r in conn.execute(q).mappings()]

    def training_pairs(self) -> builtins.list[tuple[str, str]]:
        """(transcript, category) of every correction: what `ivr dispatch retrain` learns from."""
        return [(c.text, c.category) for c in self.corrections()]

    # --- helpers -------------------------------------------------------------------------------------------

    def _index(self, conn: Connection, tid: int, text_: str) -> None:
        if not self.sqlite:
            return
        conn.execute(text("DELETE FROM tickets_fts WHERE rowid = :id"), {"id": tid})
        uni, bi = grams(text_)
        if uni:
            conn.execute(text("INSERT INTO tickets_fts(rowid, uni, bi) VALUES (:id, :uni, :bi)"),
                         {"id": tid, "uni": uni, "bi": bi})

    @staticmethod
    def _row(conn: Connection, number: str) -> Any:
        row = conn.execute(select(tickets_table).where(tickets_table.c.number == number)).mappings().first()
        if row is None:
            raise TicketNotFound(f"no ticket {number}")
        return row

    @staticmethod
    def _id(conn: Connection, number: str) -> int:
        tid = conn.execute(select(tickets_table.c.id).where(tickets_table.c.number == number)).scalar()
        if tid is None:
            raise TicketNotFound(f"no ticket {number}")
        return int(tid)

    def _update(self, number: str, values: dict[str, Any]) -> Ticket:
        with self.engine.begin() as conn:
            res = conn.execute(update(tickets_table).where(tickets_table.c.number == number).values(**values))
            if res.rowcount == 0:
                raise TicketNotFound(f"no ticket {number}")
        return self.get(number)


def _to_row(r: Any) -> TicketRow:
    return TicketRow(
        id=r["id"], number=r["number"], created_at=_utc(r["created_at"]), caller=r["caller"],  # type: ignore[arg-type]
        kind=r["kind"], status=r["status"], transcription=r["transcription"], category=r["category"],
        department=r["department"], district=r["district"], urgency=r["urgency"], text=r["text"],
        audio_ms=r["audio_ms"],
    )


def _to_ticket(row: Any) -> Ticket:
    return Ticket(
        id=row["id"], number=row["number"], created_at=_utc(row["created_at"]), caller=row["caller"],  # type: ignore[arg-type]
        call_id=row["call_id"], kind=row["kind"], status=row["status"],
        transcription=TranscriptionStatus(row["transcription"]),
        menu_path=tuple(json.loads(row["menu_path"])), flags=tuple(json.loads(row["flags"])),
        recording=row["recording"], recording_sha256=row["recording_sha256"], audio_ms=row["audio_ms"],
        transcript=Transcript.from_dict(json.loads(row["transcript"])) if row["transcript"] else None,
        category=row["category"], department=row["department"], district=row["district"],
        urgency=row["urgency"], extra=json.loads(row["extra"]),
        suggestion=json.loads(row["suggestion"]) if row["suggestion"] else None,
        contact_name=row["contact_name"], callback_number=row["callback_number"], address=row["address"],
        note=row["note"], updated_at=_utc(row["updated_at"]), dispatched_at=_utc(row["dispatched_at"]),
        dispatched_by=row["dispatched_by"], node=row["node"],
    )
