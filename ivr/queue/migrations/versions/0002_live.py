"""Each node's calls in progress, carried by its heartbeat, so any node's console shows every node's calls.

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


def upgrade() -> None:
    op.add_column("centre_nodes", sa.Column("live", sa.Text, nullable=False, server_default="[]"))


def downgrade() -> None:
    op.drop_column("centre_nodes", "live")
