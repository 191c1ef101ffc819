"""Ticket lookups for the flow's lookup nodes: a ticket number in, its status (or None) out."""
from __future__ import annotations

import logging
from typing import Protocol

from ivr.call import TicketLookup
from ivr.logs import mask_number
from ivr.tickets.model import TicketNotFound

__all__ = ["store_lookup"]

log = logging.getLogger(__name__)


class _HasGet(Protocol):
    def get(self, number: str): ...  # noqa: ANN201 - TicketStore.get -> Ticket


def store_lookup(store: _HasGet) -> TicketLookup:
    """A lookup over `TicketStore.get`: the ticket's status ("open", "dispatched", "closed"), None if unknown."""

    def lookup(number: str) -> str | None:
        try:
            return str(store.get(number).status)
        except TicketNotFound:
            log.info("ticket lookup: no ticket %s", mask_number(number))
            return None

    return lookup
