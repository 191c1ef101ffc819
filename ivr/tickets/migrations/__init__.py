"""Alembic migrations of the ticket database (tickets, audit trail, corrections, console users and sessions)."""
