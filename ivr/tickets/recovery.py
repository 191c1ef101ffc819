"""Tickets whose call died while the caller spoke: the WAV header repaired, the ticket flagged `interrupted` and
queued for transcription. `ivr serve` runs it at start-up for its own node; `ivr tickets transcribe
--interrupted` runs it by hand."""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from pathlib import Path

from asr.audio import SAMPLE_RATE
from ivr.media.recording import repair
from ivr.tickets.model import TicketNotFound
from ivr.tickets.store import TicketStore

__all__ = ["INTERRUPTED", "recover_interrupted"]

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted"  # the flag of a recovered ticket


def recover_interrupted(store: TicketStore, recordings_dir: Path, before: datetime,
                        node: str | None = None) -> list[str]:
    """Recover the tickets still "recording" that were created before `before` (only those `node` was recording,
    unless None): repair the WAV header, store its length and checksum, flag the ticket interrupted and queue it
    for transcription. Returns their numbers."""
    recovered = []
    for ticket in store.interrupted(before, node):
        try:
            path = store.recording_file(ticket, recordings_dir)
        except (PermissionError, TicketNotFound) as exc:
            store.set_transcription_failed(ticket.number, str(exc))
            continue
        if not path.is_file():
            store.set_transcription_failed(ticket.number, "recording missing")
            continue
        data = repair(path)
        store.complete_recording(ticket.number, audio_ms=data * 1000 // (2 * SAMPLE_RATE),
                                 sha256=hashlib.sha256(path.read_bytes()).hexdigest(), transcript=None,
                                 flags=(INTERRUPTED,))
        recovered.append(ticket.number)
        log.info("ticket %s: recovered an interrupted recording (%d bytes of audio)", ticket.number, data)
    return recovered
