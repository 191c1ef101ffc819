"""Drives a CallQueue in real time: ticks it, dials operators for queued callers and dials callbacks back.

Live callers: on Connect the operator's SIP URI is dialled (the media bridge to the caller's leg is the B2BUA's job;
here the operator leg is held for `hold_s`, as a stand-in, when `hold_s` is set). Callbacks: the callback is claimed
in the store, the caller's number is dialled through the trunk, then the operator; the store records the outcome.
Announce/OfferCallback events go to `on_event` (the flow plays them).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ivr.queue.callbacks import CallbackStore
from ivr.queue.dialer import dial
from ivr.queue.engine import CallQueue
from ivr.queue.model import AgentState, Connect, Priority, QueueEvent

__all__ = ["QueueRunner", "callback_call_id"]

log = logging.getLogger(__name__)

def callback_call_id(cb_id: int) -> str:
    return f"cb-{cb_id}"


class QueueRunner:
    def __init__(self, queue: CallQueue, store: CallbackStore | None, trunk: tuple[str, int],
                 owner: str = "node1", hold_s: float = 0.0, tick_s: float = 0.05,
                 on_event: Callable[[QueueEvent], None] | None = None) -> None:
        self.queue, self.store, self.trunk, self.owner = queue, store, trunk, owner
        self.hold_s, self.tick_s = hold_s, tick_s
        self.on_event = on_event or (lambda e: None)
        self.connects: list[Connect] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def restore(self) -> int:
        """Put every outstanding callback back in the queue at its original place (after a restart)."""
        if self.store is None:
            return 0
        self.store.recover()
        n = 0
        for cb in self.store.outstanding():
            cid = callback_call_id(cb.id)
            if any(c.call_id == cid for c in self.queue.queued()):  # already queued in this process
                continue
            self.queue.enqueue(cid, cb.group, Priority(cb.priority), cb.ticket, callback=True, entered=cb.entered)
            n += 1
        return n

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for event in self.queue.tick():
                if isinstance(event, Connect):
                    self.connects.append(event)
                    task = asyncio.create_task(self._connect(event))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                else:
                    self.on_event(event)
            try:
                await asyncio.wait_for(stop.wait(), self.tick_s)
            except asyncio.TimeoutError:
                pass
        if self._tasks:
            await asyncio.gather(*self._tasks)

    async def _connect(self, event: Connect) -> None:
        self.queue.connected(event.call_id)
        if event.callback and self.store is not None:
            cb_id = int(event.call_id.removeprefix("cb-"))
            if not self.store.claim(cb_id, self.owner):
                self.queue.set_state(event.agent_id, AgentState.AVAILABLE)
                return
            cb = self.store.get(cb_id)
            caller = await dial(f"sip:{cb.number}@{self.trunk[0]}:{self.trunk[1]}", self.trunk, hold_s=0.0)
            self.store.finish(cb_id, self.owner, caller.outcome)
            if caller.outcome != "answered":
                after = self.store.get(cb_id)
                if after.status == "pending":  # retry later at its place
                    self.queue.enqueue(event.call_id, self.queue.agents[event.agent_id].groups[0],
                                       Priority(cb.priority), cb.ticket, callback=True, entered=cb.entered)
                self.queue.set_state(event.agent_id, AgentState.AVAILABLE)
                return
        result = await dial(event.agent_uri, _uri_hostport(event.agent_uri) or self.trunk, hold_s=self.hold_s)
        if result.outcome == "answered":
            self.queue.call_ended(event.agent_id)
        else:
            log.warning("operator %s did not answer (%s)", event.agent_id, result.status)
            self.queue.set_state(event.agent_id, AgentState.AVAILABLE)


def _uri_hostport(uri: str) -> tuple[str, int] | None:
    host = uri.split("@", 1)[-1].split(";", 1)[0]
    if ":" in host:
        h, p = host.rsplit(":", 1)
        if p.isdigit():
            return h, int(p)
    return None
