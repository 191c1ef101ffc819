"""Wake only the node that must act: a call given an operator notifies the node that puts it through (payload: its
node id); every other change reaches the other nodes' mirrors at their next periodic look (every second), and the
node that makes a change (queues a caller, frees an operator) assigns at once itself.

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ASSIGNED = """
CREATE OR REPLACE FUNCTION ivr_queue_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ivr_queue', coalesce(NEW.node, ''));
    RETURN NULL;
END $$
"""
EVERY_CHANGE = """
CREATE OR REPLACE FUNCTION ivr_queue_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ivr_queue', TG_TABLE_NAME);
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    for table in ("centre_calls", "centre_agents"):
        op.execute(f"DROP TRIGGER {table}_notify ON {table}")
    op.execute(ASSIGNED)
    op.execute("CREATE TRIGGER centre_calls_notify AFTER UPDATE ON centre_calls FOR EACH ROW "
               "WHEN (NEW.status = 'connecting' AND OLD.status <> 'connecting') EXECUTE FUNCTION ivr_queue_notify()")


def downgrade() -> None:
    op.execute("DROP TRIGGER centre_calls_notify ON centre_calls")
    op.execute(EVERY_CHANGE)
    for table in ("centre_calls", "centre_agents"):
        op.execute(f"CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION ivr_queue_notify()")
