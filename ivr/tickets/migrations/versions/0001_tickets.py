"""The tickets table as the walking skeleton created it.

Revision ID: 0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("number", sa.String(32), nullable=False, unique=True),
        sa.Column("day", sa.String(8), nullable=False, index=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("caller", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("transcription", sa.String(16), nullable=False, index=True),
        sa.Column("menu_path", sa.Text, nullable=False),
        sa.Column("flags", sa.Text, nullable=False),
        sa.Column("recording", sa.Text, nullable=False),
        sa.Column("recording_sha256", sa.String(64), nullable=False),
        sa.Column("audio_ms", sa.Integer, nullable=False),
        sa.Column("transcript", sa.Text, nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("department", sa.String(128), nullable=False),
        sa.Column("district", sa.String(32), nullable=False),
        sa.Column("urgency", sa.String(16), nullable=False),
        sa.Column("extra", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tickets")
