"""The knowledge base's typed entries, the findings of a check, and `KbError`.

An entry is spoken to callers only while it is `speakable`: checked against its source and not expired. Unverified
and expired entries stay visible to operators, flagged.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from ivr.errors import IvrError

__all__ = ["Source", "Entry", "Finding", "KbError", "Status", "Level"]

Status = Literal["checked", "unverified"]
Level = Literal["error", "warning"]


@dataclass(frozen=True)
class Source:
    """The public document an entry's facts come from."""

    title: str
    url: str | None = None


@dataclass(frozen=True)
class Entry:
    """One question the line can answer: how callers ask it, what is spoken, what operators read."""

    id: str
    title: str
    file: str  # the file's stem: "heating" for kb/heating.yaml
    topic: str
    questions: tuple[str, ...]
    synonyms: tuple[str, ...]
    spoken: str
    text: str
    department: str
    source: Source
    status: Status
    checked_on: date | None
    checked_by: str | None
    expires: date | None

    def speakable(self, today: date) -> bool:
        """True when the line may say this answer: checked, and not past its expiry date."""
        return self.status == "checked" and not self.expired(today)

    def expired(self, today: date) -> bool:
        """True after the expiry date."""
        return self.expires is not None and today > self.expires

    @property
    def prompt_name(self) -> str:
        """The prompt the spoken answer is rendered as (`kb_<id>`)."""
        return f"kb_{self.id}"


@dataclass(frozen=True)
class Finding:
    """One problem of a knowledge-base file: `kb/heating.yaml: ht_season: reason` (entry "" for the file)."""

    path: Path
    entry: str
    level: Level
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.entry}: {self.reason}" if self.entry else f"{self.path}: {self.reason}"


class KbError(IvrError, ValueError):
    """A knowledge base that cannot be loaded; the message is the first error, `findings` has them all."""

    def __init__(self, findings: list[Finding] | str) -> None:
        self.findings = findings if isinstance(findings, list) else []
        message = findings if isinstance(findings, str) else str(findings[0])
        if isinstance(findings, list) and len(findings) > 1:
            more = len(findings) - 1
            message += f" (and {more} more error{'s' if more > 1 else ''})"
        super().__init__(message)
