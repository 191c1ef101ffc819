"""Tickets: what a caller reported, with the transcript and recording, stored for operators to dispatch."""
from ivr.tickets.model import Ticket, TranscriptionStatus
from ivr.tickets.store import TicketNotFound, TicketStore

__all__ = ["Ticket", "TranscriptionStatus", "TicketStore", "TicketNotFound"]
