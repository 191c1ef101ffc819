"""The durable list of post-call transcription jobs (one per ticket, leased by a worker, committed once) and the
live transcript kept beside the final one.

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as t:
        t.add_column(sa.Column("live_transcript", sa.Text, nullable=True))
    jobs = op.create_table(
        "transcription_jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False,
                  unique=True),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("owner", sa.String(128), nullable=False, server_default=""),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
    )
    # tickets already waiting for a model become jobs (the backlog is worked off through the list from now on)
    conn = op.get_bind()
    waiting = conn.execute(sa.text("SELECT id FROM tickets WHERE transcription = 'pending' ORDER BY id")).scalars()
    now = datetime.now(timezone.utc)
    op.bulk_insert(jobs, [{"ticket_id": tid, "state": "queued", "attempts": 0, "owner": "", "created_at": now,
                           "error": ""} for tid in waiting])


def downgrade() -> None:
    op.drop_table("transcription_jobs")
    with op.batch_alter_table("tickets") as t:
        t.drop_column("live_transcript")
