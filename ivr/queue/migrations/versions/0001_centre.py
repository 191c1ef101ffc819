"""The centre's queue in PostgreSQL: callbacks with leases, operators' states as people set them and their audit
(the tables `callbacks.db` holds on one machine), and the live queue shared by the nodes: queued callers and the
callbacks keeping their places, operators' live states, node heartbeats; a change to the queue or the operators
wakes every node (NOTIFY ivr_queue).

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

NOTIFY = """
CREATE FUNCTION ivr_queue_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ivr_queue', TG_TABLE_NAME);
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.create_table(
        "queue_callbacks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket", sa.String(64), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("grp", sa.String(64), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("entered", sa.Float, nullable=False),
        sa.Column("rank", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.Float, nullable=True),
        sa.Column("last_result", sa.String(32), nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )
    op.create_index("ix_queue_callbacks_status_rank", "queue_callbacks", ["status", "rank"])
    op.create_table(
        "queue_agent_states",
        sa.Column("agent_id", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("since", sa.Float, nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("rev", sa.Integer, nullable=False),
    )
    op.create_table(
        "queue_agent_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agent_id", sa.String(64), nullable=False, index=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("user", sa.String(64), nullable=False),
        sa.Column("before", sa.String(16), nullable=False),
        sa.Column("after", sa.String(16), nullable=False),
    )
    op.create_table(
        "centre_calls",
        sa.Column("call_id", sa.String(128), primary_key=True),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column("node", sa.String(64), nullable=True),  # NULL: a callback nobody dials yet
        sa.Column("grp", sa.String(64), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("entered", sa.Float, nullable=False),
        sa.Column("rank", sa.Float, nullable=False),
        sa.Column("ticket", sa.String(64), nullable=False),
        sa.Column("callback", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # waiting | connecting
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("assigned_at", sa.Float, nullable=True),
    )
    op.create_index("ix_centre_calls_waiting", "centre_calls", ["status", "grp", "rank", "seq"])
    op.create_table(
        "centre_agents",
        sa.Column("agent_id", sa.String(64), primary_key=True),
        sa.Column("uri", sa.String(256), nullable=False),
        sa.Column("groups", sa.String(512), nullable=False),  # comma-separated
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("since", sa.Float, nullable=False),
        sa.Column("wrap_up_until", sa.Float, nullable=False),
        sa.Column("call_id", sa.String(128), nullable=True),
        sa.Column("node", sa.String(64), nullable=True),  # the node holding its call
        sa.Column("calls", sa.BigInteger, nullable=False),  # calls given to it so far
    )
    op.create_table(
        "centre_nodes",
        sa.Column("node", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),  # up | lost | stopped
        sa.Column("started", sa.Float, nullable=False),
        sa.Column("heartbeat", sa.Float, nullable=False),
        sa.Column("calls", sa.Integer, nullable=False),  # calls in progress on it
        sa.Column("queued", sa.Integer, nullable=False),  # its callers waiting in the centre's queue
        sa.Column("lost_callers", sa.Integer, nullable=False),  # callers abandoned when it was lost
        sa.Column("console", sa.String(256), nullable=False),
    )
    op.execute(NOTIFY)
    for table in ("centre_calls", "centre_agents"):
        op.execute(f"CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION ivr_queue_notify()")


def downgrade() -> None:
    for table in ("centre_calls", "centre_agents"):
        op.execute(f"DROP TRIGGER {table}_notify ON {table}")
    op.execute("DROP FUNCTION ivr_queue_notify()")
    for table in ("centre_nodes", "centre_agents", "centre_calls", "queue_agent_audit", "queue_agent_states",
                  "queue_callbacks"):
        op.drop_table(table)
