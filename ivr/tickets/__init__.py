"""Tickets: what a caller reported, with the transcript and recording, stored for operators to dispatch."""
from ivr.tickets.model import Ticket, TicketNotFound, TranscriptionStatus
from ivr.tickets.store import TicketStore

__all__ = ["Ticket", "TranscriptionStatus", "TicketStore", "TicketNotFound"]
