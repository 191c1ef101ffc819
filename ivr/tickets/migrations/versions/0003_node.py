"""The node that recorded each ticket: at start-up a server repairs only the recordings it was making itself
(several nodes may share one ticket store).

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as t:
        t.add_column(sa.Column("node", sa.String(64), nullable=False, server_default=""))
        t.create_index("ix_tickets_transcription_node", ["transcription", "node"])


def downgrade() -> None:
    with op.batch_alter_table("tickets") as t:
        t.drop_index("ix_tickets_transcription_node")
        t.drop_column("node")
