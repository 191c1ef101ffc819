"""Drives a CallQueue in real time: ticks it, hands live callers' events to the desk and dials callbacks back.

Live callers: every event for a call waiting on the desk (Announce, OfferCallback, Connect) goes to
`desk.deliver()`; the desk plays it on the caller's own task and calls the operator. A Connect for a caller who
has already gone frees the operator again. Callbacks: the callback is claimed in the store, `dialback` calls the
citizen and then the operator, and the store records the outcome (busy / no answer are retried on the store's
policy; `on_failed` hears of a callback given up, e.g. to note it on the ticket). A callback that is not due yet
(retry back-off, calling hours) leaves the queue and comes back at its place when it is due. While a callback is
dialled and bridged its lease is renewed (every quarter of it); every second the runner takes back the callbacks
whose lease ran out (their dialler died, on this node or on another sharing the store), and they rejoin the queue
at their place.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from ivr.queue.call_queue import CallQueue
from ivr.queue.callbacks import FAILED, PENDING, Callback, CallbackNotFound, CallbackStore
from ivr.queue.model import AgentState, Connect, Priority, QueueError, QueueEvent, UnknownCall
from ivr.storage import problem

__all__ = ["QueueRunner", "EventSink", "Dialback", "DialbackResult", "callback_call_id", "release"]

log = logging.getLogger(__name__)

REQUEUE_EVERY_S = 1.0


def callback_call_id(cb_id: int) -> str:
    return f"cb-{cb_id}"


def release(queue: CallQueue, event: Connect, talked: bool = False) -> None:
    """Free the agent of a Connect whose caller has gone: wrap-up if the operator answered, else available."""
    try:
        queue.connected(event.call_id)
    except UnknownCall:
        pass
    if talked:
        queue.call_ended(event.agent_id)
    else:
        queue.set_state(event.agent_id, AgentState.AVAILABLE)


class EventSink(Protocol):
    def deliver(self, event: QueueEvent) -> bool:
        """Take the event if it is for a caller waiting here."""


@dataclass(frozen=True)
class DialbackResult:
    """How a callback attempt went. `outcome` goes to CallbackStore.finish ('answered' completes it);
    `operator`: "talked" (bridged: the agent wraps up), "missed" (rang, no answer: signed out), "" (not rung)."""
    outcome: str
    operator: str = ""


Dialback = Callable[[Connect, Callback], Awaitable[DialbackResult]]


class QueueRunner:
    def __init__(self, queue: CallQueue, store: CallbackStore | None, *, desk: EventSink | None = None,
                 dialback: Dialback | None = None, owner: str = "node1", lease_s: float = 120.0,
                 tick_s: float = 0.05, on_event: Callable[[QueueEvent], None] | None = None,
                 on_failed: Callable[[Callback], None] | None = None) -> None:
        self.queue, self.store, self.desk, self.dialback = queue, store, desk, dialback
        self.owner, self.lease_s, self.tick_s = owner, lease_s, tick_s
        self.on_event = on_event or (lambda e: None)
        self.on_failed = on_failed or (lambda cb: None)
        self.connects: deque[Connect] = deque(maxlen=1000)  # the latest hand-overs, for status and tests
        self._tasks: set[asyncio.Task[None]] = set()
        self._dialling: set[int] = set()
        self._refused: set[int] = set()  # callbacks the queue would not take (logged once)
        self._requeued_at = 0.0
        self._renewed_at = 0.0
        self._store_trouble = ""

    def restore(self) -> int:
        """Put every pending callback back in the queue at its original place (after a restart). One still being
        dialled (by another node sharing the store, or by this node's previous run) comes back when its lease runs
        out."""
        if self.store is None:
            return 0
        self.store.recover()
        return self._requeue([cb for cb in self.store.outstanding() if cb.status == PENDING])

    def _requeue(self, callbacks: list[Callback]) -> int:
        """Queue the callbacks not queued yet; one the queue refuses (a desk no longer configured) is logged once
        and does not keep the others out."""
        queued = {c.call_id for c in self.queue.queued()}
        n = 0
        for cb in callbacks:
            cid = callback_call_id(cb.id)
            if cid in queued or cb.id in self._dialling:
                continue
            try:
                self.queue.enqueue(cid, cb.group, Priority(cb.priority), cb.ticket, callback=True, entered=cb.entered)
            except QueueError as exc:
                if cb.id not in self._refused:
                    log.error("callback %d cannot keep its place: %s", cb.id, exc)
                self._refused.add(cb.id)
                continue
            n += 1
        return n

    def _keep_leases(self) -> None:
        """Renew the leases of the callbacks being dialled here (every quarter of a lease), and take back those
        whose dialler died here or on another node (their lease ran out)."""
        assert self.store is not None
        now = self.store.clock()
        if self._dialling and now - self._renewed_at >= self.lease_s / 4:
            self._renewed_at = now
            held = self.store.renew(self._dialling, self.owner, self.lease_s)
            for cb_id in sorted(self._dialling - held):
                log.warning("callback %d: lease lost while dialling (this worker stalled past it)", cb_id)
        self.store.recover()

    def _requeue_due(self) -> None:
        """Callbacks whose retry is due again (or booked by another process) rejoin the queue at their place."""
        assert self.store is not None
        now = self.store.clock()
        if self.store.hours is not None and not self.store.hours.allowed(now):
            return
        self._requeue([cb for cb in self.store.outstanding()
                       if cb.status == PENDING and cb.next_attempt_at <= now])

    def step(self) -> None:
        """One tick: hand the queue's events to the desk, start callback calls, requeue due callbacks."""
        if self.store is not None and self.queue.clock() - self._requeued_at >= REQUEUE_EVERY_S:
            self._requeued_at = self.queue.clock()
            try:
                self._keep_leases()
                self._requeue_due()
            except SQLAlchemyError as exc:  # a database server restarting: the calls in progress go on
                why = problem(exc)
                if why != self._store_trouble:
                    log.error("callbacks: the store cannot be reached (%s); trying again every %.0f s", why,
                              REQUEUE_EVERY_S)
                self._store_trouble = why
            else:
                self._store_trouble = ""
        for event in self.queue.tick():
            if isinstance(event, Connect):
                self.connects.append(event)
            if self.desk is not None and self.desk.deliver(event):
                continue
            if isinstance(event, Connect) and event.callback:
                task = asyncio.create_task(self._callback(event))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            elif isinstance(event, Connect):
                log.info("call %s left before operator %s was free", event.call_id, event.agent_id)
                release(self.queue, event)
            else:
                self.on_event(event)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.step()
            try:
                await asyncio.wait_for(stop.wait(), self.tick_s)
            except TimeoutError:
                pass
        if self._tasks:
            await asyncio.gather(*self._tasks)

    async def _callback(self, event: Connect) -> None:
        self.queue.connected(event.call_id)
        cb_id = int(event.call_id.removeprefix("cb-"))
        try:
            claimed = self.store is not None and self.store.claim(cb_id, self.owner, self.lease_s)
        except SQLAlchemyError as exc:
            log.error("callback %d not dialled now, the store cannot be reached: %s", cb_id, exc)
            claimed = False
        if self.store is None or self.dialback is None or not claimed:
            # not due (retry back-off, calling hours) or another node has it: it comes back when due
            self.queue.set_state(event.agent_id, AgentState.AVAILABLE)
            return
        self._dialling.add(cb_id)
        try:
            try:
                result = await self.dialback(event, self.store.get(cb_id))
            except Exception:
                log.exception("callback %d: dialling failed", cb_id)
                result = DialbackResult("failed")
            after = self.store.finish(cb_id, self.owner, result.outcome)
        except CallbackNotFound:  # taken back after this worker stalled past its lease: it is dialled again
            log.warning("callback %d: %s, but the lease was lost meanwhile; not recorded", cb_id, result.outcome)
            self.queue.set_state(event.agent_id, AgentState.AVAILABLE)
            return
        finally:
            self._dialling.discard(cb_id)
        log.info("callback %d: %s (attempt %d, now %s)", cb_id, result.outcome, after.attempts, after.status)
        if result.operator == "talked":
            self.queue.call_ended(event.agent_id)
        elif result.operator == "missed":
            log.warning("operator %s did not answer a callback; signing them out", event.agent_id)
            self.queue.set_state(event.agent_id, AgentState.AVAILABLE)  # off the call, then out
            self.queue.set_state(event.agent_id, AgentState.SIGNED_OUT)
        else:
            self.queue.set_state(event.agent_id, AgentState.AVAILABLE)
        if after.status == FAILED:
            self.on_failed(after)
