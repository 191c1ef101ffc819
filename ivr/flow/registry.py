"""Flows that follow their files: edited flows serve new calls, calls in progress keep their version.

`FlowRegistry.current()` is called once per new call. It looks at the file's mtime and size (cheap), and only
when they changed reads the text and compares its SHA-256 with the loaded version's. A changed file is loaded and
checked; a bad edit is rejected with the error logged and the last good version keeps serving. A call holds the
`Flow` object it started with, so reloading never changes a call in progress. The intent models its menus
understand callers with (`asr.meaning`) are trained when the flow is loaded, never during a call.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Container
from pathlib import Path

from asr.meaning import family_model
from ivr.flow.loader import FlowError, load_flow
from ivr.flow.model import Flow, Menu

__all__ = ["FlowRegistry"]

log = logging.getLogger(__name__)


def _learnt(flow: Flow) -> Flow:
    """The flow, once the intent models of its menus are trained (each family once per process)."""
    for node in flow.nodes.values():
        if isinstance(node, Menu) and node.understand:
            family_model(node.understand)
    return flow


class FlowRegistry:
    """The current good version of one flow file."""

    def __init__(self, path: str | Path, prompts: Container[str] | None = None,
                 kb_entries: Container[str] | None = None) -> None:
        self.path = Path(path)
        self.prompts = prompts
        self.kb_entries = kb_entries  # the knowledge base's entry ids, which kb nodes may offer by key
        self._lock = threading.Lock()
        self._flow = _learnt(load_flow(self.path, prompts, kb_entries))  # the first version must be good: raise FlowError
        self._stamp = self._stat()
        self.last_error: str = ""
        self.reloads = 0

    def _stat(self) -> tuple[int, int]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return (0, -1)
        return (st.st_mtime_ns, st.st_size)

    def current(self) -> Flow:
        """The flow for a new call, reloaded first if its file changed."""
        stamp = self._stat()
        if stamp == self._stamp:
            return self._flow
        with self._lock:
            if stamp == self._stamp:
                return self._flow
            self._stamp = stamp
            try:
                text = self.path.read_bytes()
            except OSError as exc:
                self.last_error = (f"{self.path}: cannot read the flow ({exc.strerror}); keeping version "
                                   f"{self._flow.digest[:12]}")
                log.error("flow edit rejected: %s", self.last_error)
                return self._flow
            if hashlib.sha256(text).hexdigest() == self._flow.digest:
                return self._flow  # touched, not changed
            try:
                flow = _learnt(load_flow(self.path, self.prompts, self.kb_entries))
            except FlowError as exc:
                self.last_error = f"{exc}; keeping version {self._flow.digest[:12]}"
                log.error("flow edit rejected: %s", self.last_error)
                return self._flow
            log.info("flow %s reloaded: version %s -> %s", flow.name, self._flow.digest[:12], flow.digest[:12])
            self._flow = flow
            self.last_error = ""
            self.reloads += 1
            return flow
