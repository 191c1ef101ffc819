"""Connects the flow runner's recordings to the ticket store."""
from __future__ import annotations

from pathlib import Path

from asr.results import Transcript
from ivr.flow.runner import CallRecord
from ivr.tickets.store import TicketStore

__all__ = ["StoreSink"]


class StoreSink:
    """A TicketSink writing to a TicketStore; recordings go to `<recordings>/<YYYYMMDD>/<call>-<n>.wav`."""

    def __init__(self, store: TicketStore, recordings_dir: Path) -> None:
        self.store = store
        self.recordings_dir = recordings_dir

    def recording_path(self, call: CallRecord, kind: str) -> Path:
        day = call.started.strftime("%Y%m%d")
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in call.call_id)[:80]
        return self.recordings_dir / day / f"{safe}-{kind}-{len(call.tickets) + 1}.wav"

    def open(self, call: CallRecord, kind: str, recording: Path) -> str:
        ticket = self.store.create(
            caller=call.caller, call_id=call.call_id, kind=kind, menu_path=call.path, flags=call.flags,
            recording=str(recording.relative_to(self.recordings_dir)),
        )
        return ticket.number

    def finish(self, ticket_id: str, call: CallRecord, audio_ms: int, sha256: str,
               transcript: Transcript | None) -> bool:
        ticket = self.store.complete_recording(ticket_id, audio_ms=audio_ms, sha256=sha256, transcript=transcript,
                                               menu_path=call.path)
        return bool((ticket.suggestion or {}).get("transfer_now"))
