"""The ticket as the rest of the product sees it."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from asr.results import Transcript

__all__ = ["TranscriptionStatus", "Ticket"]


class TranscriptionStatus(str, enum.Enum):
    RECORDING = "recording"  # the caller is still speaking (or the call died while they were)
    PENDING = "pending"  # recorded, waiting for a model (`ivr tickets transcribe --pending`)
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Ticket:
    id: int
    number: str  # digits only, read to the caller digit by digit: YYYYMMDD + sequence
    created_at: datetime
    caller: str
    call_id: str
    kind: str  # complaint | suggestion | ...
    status: str  # open | dispatched | closed
    transcription: TranscriptionStatus
    menu_path: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    recording: str = ""  # path of the WAV, relative to the recordings folder
    recording_sha256: str = ""
    audio_ms: int = 0
    transcript: Transcript | None = None
    category: str = ""
    department: str = ""
    district: str = ""
    urgency: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.transcript.text if self.transcript else ""
