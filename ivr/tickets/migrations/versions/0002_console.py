"""Dispatch suggestion and operator fields on tickets; audit trail, corrections, console users and sessions;
full-text index of transcripts (SQLite FTS5 over character unigrams and bigrams).

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _grams(text: str) -> tuple[str, str]:
    # the same tokenisation as ivr.tickets.schema.grams, frozen here as it was when this revision was written
    import unicodedata

    chars = [c for c in unicodedata.normalize("NFKC", text).lower() if c.isalnum()]
    return " ".join(chars), " ".join(a + b for a, b in zip(chars, chars[1:]))


def upgrade() -> None:
    with op.batch_alter_table("tickets") as t:
        t.add_column(sa.Column("suggestion", sa.Text, nullable=True))
        t.add_column(sa.Column("contact_name", sa.String(64), nullable=False, server_default=""))
        t.add_column(sa.Column("callback_number", sa.String(32), nullable=False, server_default=""))
        t.add_column(sa.Column("address", sa.Text, nullable=False, server_default=""))
        t.add_column(sa.Column("note", sa.Text, nullable=False, server_default=""))
        t.add_column(sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))
        t.add_column(sa.Column("dispatched_by", sa.String(64), nullable=False, server_default=""))
        t.create_index("ix_tickets_category", ["category"])
        t.create_index("ix_tickets_district", ["district"])
        t.create_index("ix_tickets_urgency", ["urgency"])
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("before", sa.Text, nullable=False),
        sa.Column("after", sa.Text, nullable=False),
    )
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("suggested", sa.String(64), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE tickets_fts USING fts5(uni, bi, tokenize='unicode61')")
        bind = op.get_bind()
        rows = bind.execute(sa.text("SELECT id, text FROM tickets WHERE text != ''")).all()
        for tid, text in rows:
            uni, bi = _grams(text)
            bind.execute(sa.text("INSERT INTO tickets_fts(rowid, uni, bi) VALUES (:id, :uni, :bi)"),
                         {"id": tid, "uni": uni, "bi": bi})


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE tickets_fts")
    op.drop_table("sessions")
    op.drop_table("users")
    op.drop_table("corrections")
    op.drop_table("audit")
    with op.batch_alter_table("tickets") as t:
        t.drop_index("ix_tickets_urgency")
        t.drop_index("ix_tickets_district")
        t.drop_index("ix_tickets_category")
        for col in ("dispatched_by", "dispatched_at", "note", "address", "callback_number", "contact_name",
                    "suggestion"):
            t.drop_column(col)
