"""A ticket's recording on disk: found only inside the recordings folder, and checked against the SHA-256 stored
when the call ended (on this node's disk or in the centre's shared folder)."""
from __future__ import annotations

import hashlib
from pathlib import Path

from ivr.tickets.db import TicketDb
from ivr.tickets.model import RecordingCheck, Ticket, TicketNotFound

__all__ = ["RecordingFiles"]


class RecordingFiles(TicketDb):
    """Where a ticket's WAV is, and whether it is still the file the call wrote."""

    @staticmethod
    def recording_file(ticket: Ticket, recordings_dir: Path, shared_dir: Path | None = None) -> Path:
        """The ticket's WAV, refusing any path that leaves the recordings folder: this node's, else (when it is not
        there) the centre's shared folder of finished recordings."""
        if not ticket.recording:
            raise TicketNotFound(f"ticket {ticket.number} has no recording")
        path = Path()
        for folder in (recordings_dir, shared_dir):
            if folder is None:
                continue
            root = Path(folder).resolve()
            path = (root / ticket.recording).resolve()
            if not path.is_relative_to(root) or path == root:
                raise PermissionError(f"ticket {ticket.number}: recording path leaves the recordings folder")
            if path.is_file():
                break
        return path

    def verify_recording(self, number: str, recordings_dir: Path, shared_dir: Path | None = None) -> RecordingCheck:
        """Compare the recording's SHA-256 with the one stored when the call ended."""
        t = self.get(number)
        try:
            path = self.recording_file(t, recordings_dir, shared_dir)
        except PermissionError:
            return RecordingCheck(number, t.recording, False, "outside the recordings folder")
        except TicketNotFound:
            return RecordingCheck(number, "", False, "missing")
        if not path.is_file():
            return RecordingCheck(number, str(path), False, "missing", t.recording_sha256)
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if not t.recording_sha256:
            return RecordingCheck(number, str(path), False, "no checksum", "", actual)
        ok = actual == t.recording_sha256
        return RecordingCheck(number, str(path), ok, "" if ok else "checksum mismatch", t.recording_sha256, actual)
