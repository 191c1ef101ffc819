"""Alembic environment of the centre's queue database: runs on the connection `ivr.queue.centre_schema.migrate`
hands over (``config.attributes["connection"]``), with its own version table so it may share the ticket database."""
from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes["connection"]
context.configure(connection=connection, version_table=config.attributes["version_table"])
with context.begin_transaction():
    context.run_migrations()
