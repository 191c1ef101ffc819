"""The knowledge base as the console uses it: search, read an entry, and a supervisor's save, after which the
knowledge base is reloaded from its files and the entry's spoken answer re-rendered in the background.

The re-render is a port the hotline fills (`Rerender`, given an entry whose spoken answer is to be rendered again);
without one the console only logs that the answer was not re-rendered.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

from ivr.kb import Entry, Hit, KbError, KbRegistry, KnowledgeBase
from ivr.kb.edit import AuditLine, entry_history, file_version, save_entry
from ivr.storage import BEIJING

__all__ = ["KbDesk", "Rerender", "EntryView"]

log = logging.getLogger(__name__)

Rerender = Callable[[Entry], object]
"""Renders an entry's spoken answer again (prompt `kb_<id>`); callers hear the previous audio until it is done."""


@dataclass(frozen=True)
class EntryView:
    """An entry as operators see it: the entry, how sure the search was (1.0 when opened directly) and its flags."""

    entry: Entry
    score: float
    unverified: bool
    expired: bool
    speakable: bool

    @classmethod
    def of(cls, entry: Entry, score: float, today: date) -> EntryView:
        return cls(entry, score, entry.status != "checked", entry.expired(today), entry.speakable(today))


@dataclass
class KbDesk:
    """The console's knowledge base: the registry that follows the files (opened on `directory` at first use when
    the hotline gives none) and the re-render port."""

    directory: Path | None
    registry: KbRegistry | None = None
    rerender: Rerender | None = None
    problem: str = ""  # why there is no knowledge base, when there is none
    tz: tzinfo = BEIJING  # the hotline's clock: which entries have expired today
    renders: dict[str, str] = field(default_factory=dict)  # entry id -> rendering / done / failed: why
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _render_lock: threading.Lock = field(default_factory=threading.Lock)

    def today(self) -> date:
        """The hotline's date (the `timezone` setting), which says whether an entry has expired."""
        return datetime.now(self.tz).date()

    def kb(self) -> KnowledgeBase | None:
        """The current knowledge base (reloaded if its files changed), or None when it does not load."""
        if self.registry is None and self.directory is not None:
            with self._lock:
                if self.registry is None and not self.problem:
                    try:
                        self.registry = KbRegistry(self.directory)
                    except KbError as exc:
                        self.problem = str(exc)
                        log.error("the console runs without the knowledge base: %s", exc)
        return self.registry.current() if self.registry is not None else None

    def search(self, text: str, today: date, limit: int = 5) -> list[EntryView]:
        kb = self.kb()
        if kb is None or not text.strip():
            return []
        hits: list[Hit] = kb.search(text, limit=limit)
        return [EntryView.of(h.entry, h.score, today) for h in hits]

    def entries(self, today: date) -> list[EntryView]:
        kb = self.kb()
        return [EntryView.of(e, 1.0, today) for e in kb] if kb is not None else []

    def entry(self, entry_id: str, today: date) -> EntryView | None:
        kb = self.kb()
        found = kb.get(entry_id) if kb is not None else None
        return EntryView.of(found, 1.0, today) if found is not None else None

    def version(self, entry: Entry) -> str:
        """The version of the entry's file an editor sees (sent back with the edit)."""
        assert self.registry is not None
        return file_version(self.registry.directory / f"{entry.file}.yaml")

    def history(self, entry_id: str) -> list[AuditLine]:
        return entry_history(self.registry.directory, entry_id) if self.registry is not None else []

    def save(self, entry_id: str, fields: Mapping[str, Any], user: str, base: str | None,
             today: date) -> tuple[Entry, bool]:
        """Save the edit (`KbError` when refused, nothing written), reload the knowledge base and say whether the
        spoken answer is to be re-rendered (`render` it then, in the background)."""
        kb = self.kb()
        if kb is None:
            raise KbError(f"the knowledge base is not loaded: {self.problem}")
        assert self.registry is not None
        before = kb.get(entry_id)
        save_entry(self.registry.directory, entry_id, fields, user, base=base)
        after = self.registry.current().get(entry_id)
        if after is None or self.registry.last_error:
            raise KbError(f"saved, but the knowledge base did not reload: {self.registry.last_error}")
        stale = after.speakable(today) and (before is None or not before.speakable(today)
                                            or before.spoken != after.spoken)
        if stale:
            self.renders[entry_id] = "rendering"
        log.info("kb entry %s saved by %s (%s)", entry_id, user, ", ".join(sorted(fields)))
        return after, stale

    def render(self, entry_id: str) -> None:
        """Render the entry's current spoken answer again (one render at a time, the newest text)."""
        with self._render_lock:
            entry = self.kb().get(entry_id)  # type: ignore[union-attr]  # only called after a save
            if entry is None:
                return
            if self.rerender is None:
                self.renders[entry_id] = "failed: no renderer in this process (run ivr prompts build)"
                log.warning("spoken answer of %s not re-rendered: no renderer in this process", entry_id)
                return
            try:
                self.rerender(entry)
            except Exception as exc:  # a render that fails leaves the previous audio playing
                self.renders[entry_id] = f"failed: {exc}"
                log.exception("spoken answer of %s not re-rendered", entry_id)
                return
            self.renders[entry_id] = "done"
            log.info("spoken answer of %s re-rendered", entry_id)
