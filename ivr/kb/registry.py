"""The knowledge base that follows its files, as `ivr.flow.registry` does for flows.

`KbRegistry.current()` is called for each question. It compares the files' names, mtimes and sizes (cheap) with
those of the loaded version, and only when they changed reads the files and compares their digest. A changed
knowledge base is loaded and checked; a bad edit is rejected with the error logged (and kept in `last_error`) and the
last good version keeps answering. The search index of a new version is built before it replaces the old one.

Reading and indexing take about half a second for a hundred entries, too long for the media loop: the call path asks
`latest()`, which never waits (a change it sees is loaded on a background thread and answers from the next question
on); `current()` waits for the reload (the console, after a supervisor's edit).
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from ivr.kb.loader import digest, kb_from_texts, read_texts
from ivr.kb.model import KbError
from ivr.kb.search import KnowledgeBase

__all__ = ["KbRegistry"]

log = logging.getLogger(__name__)

Stamp = tuple[tuple[str, int, int], ...]


def _load(directory: Path, texts: dict[Path, bytes]) -> KnowledgeBase:
    kb = kb_from_texts(directory, texts)
    kb.index()
    return kb


class KbRegistry:
    """The current good version of one knowledge-base folder."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._kb = _load(self.directory, read_texts(self.directory))  # the first version must be good: KbError
        self.last_error = ""
        self.reloads = 0
        self.reloading: threading.Thread | None = None  # the background reload `latest()` started, if any

    def _stat(self) -> Stamp:
        stamp = []
        for path in sorted(self.directory.glob("*.yaml")):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            stamp.append((path.name, st.st_mtime_ns, st.st_size))
        return tuple(stamp)

    def latest(self) -> KnowledgeBase:
        """The knowledge base for a new question, without waiting: changed files are reloaded in the background."""
        kb = self._kb
        if self._stat() != self._stamp:
            with self._lock:
                if self.reloading is None or not self.reloading.is_alive():
                    self.reloading = threading.Thread(target=self.current, name="kb-reload", daemon=True)
                    self.reloading.start()
        return kb

    def current(self) -> KnowledgeBase:
        """The knowledge base for a new question, reloaded first if its files changed."""
        stamp = self._stat()
        if stamp == self._stamp:
            return self._kb
        with self._lock:
            if stamp == self._stamp:
                return self._kb
            self._stamp = stamp
            try:
                texts = read_texts(self.directory)
                if digest(texts) == self._kb.digest:
                    return self._kb  # touched, not changed
                kb = _load(self.directory, texts)
            except KbError as exc:
                self.last_error = f"{exc}; keeping version {self._kb.digest[:12]}"
                log.error("knowledge base edit rejected: %s", self.last_error)
                return self._kb
            log.info("knowledge base %s reloaded: version %s -> %s (%d entries)", self.directory,
                     self._kb.digest[:12], kb.digest[:12], len(kb))
            self._kb = kb
            self.last_error = ""
            self.reloads += 1
            return kb
