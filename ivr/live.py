"""What the live page shows: calls in progress, the queue, the callbacks and the operators.

The call path and the queue feed a `LiveState` (thread-safe, in-process); the console only reads snapshots.
Either push (``call_started``/``call_updated``/``call_ended``, ``set_queue``, ``set_callbacks``) or register a
source the console calls at each refresh (``queue_source``, ``callbacks_source``, ``agents_source``)::

    live = LiveState()
    live.call_started("a84f@10.0.0.5", "13800138000", state="main_menu")
    live.queue_source = lambda: [QueueEntry("b1", "13900000000", position=1, waited_s=42.0)]
    create_app(settings, live=live)
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

__all__ = ["LiveState", "LiveCall", "QueueEntry", "CallbackEntry", "AgentEntry", "LiveSnapshot"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class LiveCall:
    call_id: str
    caller: str
    started: datetime
    state: str = ""  # the flow node, "recording", "queued", "with agent" ...
    line: str = ""  # the SIP endpoint or node that holds the call
    elderly: bool = False
    urgent: bool = False


@dataclass(frozen=True)
class QueueEntry:
    call_id: str
    caller: str
    position: int
    waited_s: float
    expected_wait_s: float | None = None
    priority: str = ""  # "", "elderly", "urgent"


@dataclass(frozen=True)
class CallbackEntry:
    id: str
    caller: str
    requested_at: datetime
    position: int | None = None  # the place kept in the queue
    status: str = "waiting"  # waiting | dialling | done | failed
    attempts: int = 0


@dataclass(frozen=True)
class AgentEntry:
    agent_id: str
    name: str
    groups: tuple[str, ...]
    state: str  # available | on_call | wrap_up | signed_out
    since: datetime


@dataclass(frozen=True)
class LiveSnapshot:
    at: datetime
    calls: tuple[LiveCall, ...]
    queue: tuple[QueueEntry, ...]
    callbacks: tuple[CallbackEntry, ...]
    errors: tuple[str, ...] = ()  # a source that failed is reported, not hidden
    agents: tuple[AgentEntry, ...] = ()


@dataclass
class LiveState:
    """Calls, queue and callbacks as the console sees them now."""

    queue_source: Callable[[], Sequence[QueueEntry]] | None = None
    callbacks_source: Callable[[], Sequence[CallbackEntry]] | None = None
    agents_source: Callable[[], Sequence[AgentEntry]] | None = None
    calls_source: Callable[[], Sequence[LiveCall]] | None = None  # every node's calls (a centre), else this one's
    _calls: dict[str, LiveCall] = field(default_factory=dict)
    _queue: tuple[QueueEntry, ...] = ()
    _callbacks: tuple[CallbackEntry, ...] = ()
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def call_started(self, call_id: str, caller: str, *, state: str = "", line: str = "", elderly: bool = False,
                     started: datetime | None = None) -> None:
        with self._lock:
            self._calls[call_id] = LiveCall(call_id, caller, started or _now(), state, line, elderly)

    def call_updated(self, call_id: str, *, state: str | None = None, urgent: bool | None = None,
                     elderly: bool | None = None) -> None:
        """Change a call's state; unknown calls are ignored (they may have just ended)."""
        with self._lock:
            call = self._calls.get(call_id)
            if call is None:
                return
            self._calls[call_id] = replace(call, state=call.state if state is None else state,
                                           urgent=call.urgent if urgent is None else urgent,
                                           elderly=call.elderly if elderly is None else elderly)

    def call_ended(self, call_id: str) -> None:
        with self._lock:
            self._calls.pop(call_id, None)

    def local_calls(self) -> tuple[LiveCall, ...]:
        """This node's calls in progress, oldest first."""
        with self._lock:
            return tuple(sorted(self._calls.values(), key=lambda c: c.started))

    def set_queue(self, entries: Sequence[QueueEntry]) -> None:
        with self._lock:
            self._queue = tuple(sorted(entries, key=lambda e: e.position))

    def set_callbacks(self, entries: Sequence[CallbackEntry]) -> None:
        with self._lock:
            self._callbacks = tuple(entries)

    def snapshot(self) -> LiveSnapshot:
        errors: list[str] = []
        with self._lock:
            calls = tuple(sorted(self._calls.values(), key=lambda c: c.started))
            queue, callbacks = self._queue, self._callbacks
        if self.calls_source is not None:
            try:
                calls = tuple(sorted(self.calls_source(), key=lambda c: c.started))
            except Exception as exc:  # this node's calls are still shown
                errors.append(f"calls: {exc}")
        if self.queue_source is not None:
            try:
                queue = tuple(sorted(self.queue_source(), key=lambda e: e.position))
            except Exception as exc:  # the page must still show the calls
                errors.append(f"queue: {exc}")
        if self.callbacks_source is not None:
            try:
                callbacks = tuple(self.callbacks_source())
            except Exception as exc:
                errors.append(f"callbacks: {exc}")
        agents: tuple[AgentEntry, ...] = ()
        if self.agents_source is not None:
            try:
                agents = tuple(self.agents_source())
            except Exception as exc:
                errors.append(f"agents: {exc}")
        return LiveSnapshot(_now(), calls, queue, callbacks, tuple(errors), agents)
