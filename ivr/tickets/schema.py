"""The ticket database's schema (kept by Alembic migrations), its SQLite settings and the full-text index terms."""
from __future__ import annotations

import logging
import unicodedata
from pathlib import Path
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, MetaData, String, Table, Text, inspect
from sqlalchemy.engine import Engine

from ivr.tickets import audit

__all__ = ["metadata", "tickets_table", "audit_table", "corrections_table", "jobs_table", "ROW_COLUMNS", "migrate", "grams",
           "fts_query", "sqlite_pragmas"]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

metadata = MetaData()
tickets_table = Table(
    "tickets", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("number", String(32), nullable=False, unique=True),
    Column("day", String(8), nullable=False, index=True),
    Column("seq", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("caller", String(64), nullable=False, default=""),
    Column("call_id", String(128), nullable=False, default=""),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False, default="open", index=True),
    Column("transcription", String(16), nullable=False, index=True),
    Column("menu_path", Text, nullable=False, default="[]"),
    Column("flags", Text, nullable=False, default="[]"),
    Column("recording", Text, nullable=False, default=""),
    Column("recording_sha256", String(64), nullable=False, default=""),
    Column("audio_ms", Integer, nullable=False, default=0),
    Column("transcript", Text, nullable=True),
    Column("text", Text, nullable=False, default=""),
    Column("category", String(64), nullable=False, default="", index=True),
    Column("department", String(128), nullable=False, default=""),
    Column("district", String(32), nullable=False, default="", index=True),
    Column("urgency", String(16), nullable=False, default="", index=True),
    Column("extra", Text, nullable=False, default="{}"),
    Column("suggestion", Text, nullable=True),
    Column("contact_name", String(64), nullable=False, default=""),
    Column("callback_number", String(32), nullable=False, default=""),
    Column("address", Text, nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
    Column("dispatched_at", DateTime(timezone=True), nullable=True),
    Column("dispatched_by", String(64), nullable=False, default=""),
    Column("node", String(64), nullable=False, default=""),  # the node that recorded it (settings.node_id)
    Column("live_transcript", Text, nullable=True),  # the call's own transcript once a final one replaced it
    Index("ix_tickets_transcription_node", "transcription", "node"),
)
audit_table = audit.define(metadata)
corrections_table = Table(
    "corrections", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("user", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("suggested", String(64), nullable=False),
    Column("category", String(64), nullable=False),
)
jobs_table = Table(
    "transcription_jobs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("state", String(16), nullable=False, index=True),  # queued | running | done | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("owner", String(128), nullable=False, default=""),  # the worker holding the lease
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("error", Text, nullable=False, default=""),
)
ROW_COLUMNS = [tickets_table.c[n] for n in (
    "id", "number", "created_at", "caller", "kind", "status", "transcription", "category", "department",
    "district", "urgency", "text", "audio_ms")]


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (`alembic upgrade head`); a database made by the walking
    skeleton (tickets table, no version) is stamped 0001 first."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.begin() as conn:
        if MigrationContext.configure(conn).get_current_revision() == head:
            return
        cfg.attributes["connection"] = conn
        tables = set(inspect(conn).get_table_names())
        if "tickets" in tables and "alembic_version" not in tables:
            command.stamp(cfg, "0001")
        command.upgrade(cfg, "head")
    log.info("ticket database upgraded to %s", head)


def grams(text_: str) -> tuple[str, str]:
    """The text as space-separated character unigrams and bigrams, the terms of the full-text index."""
    chars = [c for c in unicodedata.normalize("NFKC", text_).lower() if c.isalnum()]
    return " ".join(chars), " ".join(a + b for a, b in zip(chars, chars[1:]))


def fts_query(query: str) -> str:
    """An FTS5 MATCH expression finding every whitespace-separated part of `query` as a substring."""
    parts = []
    for part in query.split():
        uni, bi = grams(part)
        if bi:
            parts.append("bi : \"" + bi + "\"")
        elif uni:
            parts.append("uni : \"" + uni + "\"")
    return " AND ".join(parts)
