"""The centre's arrivals and hang-ups per group and class, counted where a caller is queued or hangs up on any
node, so every node's expected waits see the whole centre's arrival and abandon rates (an elderly caller queued on
another node overtakes this node's callers too).

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "centre_tallies",
        sa.Column("grp", sa.String(64), primary_key=True),
        sa.Column("priority", sa.Integer, primary_key=True),
        sa.Column("arrived", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("abandoned", sa.BigInteger, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("centre_tallies")
