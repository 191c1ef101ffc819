"""Where a node's work on the centre's database runs: in order, on one thread of its own, so a slow or distant
database delays the queue's view of the centre but never the event loop that paces every call's media.

The queue submits each piece of work with what to do with its outcome; the outcome is applied on the queue's own
thread when it next collects (every tick). `CentreLink(threaded=False)` runs the work at once on the caller's
thread, for tests that drive a queue tick by tick with a clock of their own.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ivr.queue.centre import Assignment, Centre, CentreCall, Snapshot
from ivr.queue.model import AgentState

__all__ = ["CentreLink", "Look", "Seen", "look"]

log = logging.getLogger(__name__)

Job = Callable[[], Any]
Done = Callable[[Any, BaseException | None], None]


class CentreLink:
    """Runs submitted work in submission order; `collect()` applies the outcomes (result, or the exception raised)
    with each piece's `done` on the caller's thread."""

    def __init__(self, threaded: bool = True, name: str = "centre-db") -> None:
        self.threaded = threaded
        self.in_flight = 0  # submitted and not yet collected
        self._todo: queue.SimpleQueue[tuple[Job, Done] | None] = queue.SimpleQueue()
        self._done: deque[tuple[Done, Any, BaseException | None]] = deque()
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name=name, daemon=True)
            self._thread.start()

    def submit(self, job: Job, done: Done) -> None:
        self.in_flight += 1
        if self._thread is None:
            self._done.append(_outcome(job, done))
            self.collect()
        else:
            self._todo.put((job, done))

    def collect(self) -> int:
        """Apply the outcomes of the work finished since the last call; returns how many."""
        n = 0
        while self._done:
            done, result, error = self._done.popleft()
            self.in_flight -= 1
            n += 1
            done(result, error)
        return n

    def close(self, timeout_s: float = 10.0) -> None:
        """Finish the work submitted so far (at most `timeout_s`), apply it and stop the thread."""
        if self._thread is not None:
            self._todo.put(None)
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("the centre's database work did not finish within %.0f s of stopping", timeout_s)
            self._thread = None
        self.collect()

    def _run(self) -> None:
        while (item := self._todo.get()) is not None:
            self._done.append(_outcome(*item))


def _outcome(job: Job, done: Done) -> tuple[Done, Any, BaseException | None]:
    try:
        return done, job(), None
    except Exception as exc:  # the queue's `done` decides: the database away, or a bug to raise there
        return done, None, exc


@dataclass(frozen=True)
class Look:
    """What a node asks of the centre in one sync: beat (with its load and its calls in progress, for every node's
    console), write again the changes kept while the database was away, give up lapsed nodes, read the whole
    centre; mirror it (every operator, the waiting calls); give free operators the best calls (`assign`: always,
    or when the centre shows a free operator and a call of its groups, `groups` of each operator this node has)."""
    now: float
    beat: bool
    calls: list[dict[str, Any]]
    queued: int
    retries: list[tuple[Callable[..., Any], tuple[Any, ...]]]
    lapse_s: float
    mirror: bool
    assign: bool
    groups: dict[str, tuple[str, ...]]


@dataclass
class Seen:
    """What a sync found: the centre's state for this node before its beat ("lost": given up meanwhile), the
    retries still to make, the nodes given up, the mirror's snapshot, the assignments made and the calls this
    node must put through, the centre's whole view (at a beat), and the first failure (the rest was not done)."""
    before: str | None = None
    retries_left: list[tuple[Callable[..., Any], tuple[Any, ...]]] = field(default_factory=list)
    retried: int = 0
    lost: dict[str, int] = field(default_factory=dict)
    snapshot: Snapshot | None = None
    made: list[Assignment] = field(default_factory=list)
    mine: list[CentreCall] | None = None
    view: dict[str, Any] | None = None
    live: dict[str, list[dict[str, Any]]] | None = None
    error: SQLAlchemyError | None = None


def look(centre: Centre, ask: Look) -> Seen:
    """One sync with the centre, on the link's thread (touching nothing of the queue's)."""
    seen = Seen(retries_left=list(ask.retries))
    try:
        if ask.beat:
            seen.before = centre.beat(ask.now, len(ask.calls), ask.queued, ask.calls)
            while seen.retries_left:
                op, args = seen.retries_left[0]
                op(*args)
                seen.retries_left.pop(0)
                seen.retried += 1
            seen.lost = centre.reap(ask.now, ask.lapse_s)
        if ask.mirror:
            seen.snapshot = centre.snapshot()
            seen.mine = seen.snapshot.mine
        if ask.assign or (seen.snapshot is not None and _could_assign(seen.snapshot, ask.groups)):
            seen.made, seen.mine = centre.assign(ask.now)
        if ask.beat:  # for the console and the gauges, after this node's own changes
            seen.view, seen.live = centre.view(ask.now), centre.live_calls()
    except SQLAlchemyError as exc:
        seen.error = exc
    return seen


def _could_assign(snap: Snapshot, groups: dict[str, tuple[str, ...]]) -> bool:
    waiting = {c.group for c in snap.waiting}
    return any(a.state == AgentState.AVAILABLE and waiting.intersection(groups.get(aid, ()))
               for aid, a in snap.agents.items())
