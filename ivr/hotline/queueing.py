"""The queue inside `ivr serve`: one CallQueue (general and elderly desks), the operators' durable states
(AgentDirectory, synced every second), the durable callbacks, the desk that
looks after waiting callers, the runner that ticks it all and dials callbacks, and the status it publishes
(`queue-status.json` for `ivr queue status`, Prometheus gauges for the console's /metrics).
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ivr.config import DEFAULT_GROUPS, AgentConfig, AgentGroup, Settings, hours_span
from ivr.live import CallbackEntry, LiveCall, LiveState, QueueEntry
from ivr.media.callio import DigitDetector
from ivr.media.hold import Bridge, PlaceCall
from ivr.queue.call_queue import CallQueue, QueuePolicy
from ivr.queue.callbacks import Callback, CallbackStore, CallingHours, lease_owner, queue_url
from ivr.queue.centre import Centre
from ivr.queue.desk import DeskPolicy, QueueDesk
from ivr.queue.dialback import CallbackDialler
from ivr.queue.directory import AgentDirectory
from ivr.queue.link import CentreLink
from ivr.queue.metrics import QueueMetrics, snapshot_path, write_snapshot
from ivr.queue.model import Priority
from ivr.queue.shared import SharedQueue
from ivr.queue.ticker import QueueRunner, callback_call_id
from ivr.queue.wakeup import Wakeup
from ivr.storage import database_location, problem
from ivr.tickets.store import TicketStore
from prompts.library import PromptLibrary

__all__ = ["QueueOptions", "HotlineQueue", "call_row"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueOptions:
    """How the server's queue is set up. `trunk` (host, port) carries callbacks to citizens (None: through the
    operator's host) and operator calls whose URI names no port."""
    agents: tuple[AgentConfig, ...] = ()
    groups: tuple[AgentGroup, ...] = DEFAULT_GROUPS
    trunk: tuple[str, int] | None = None
    policy: QueuePolicy = field(default_factory=QueuePolicy)
    desk: DeskPolicy = field(default_factory=DeskPolicy)  # incl. how callers reach an operator: bridge or REFER
    hours: CallingHours | None = None  # when callbacks may be dialled; None: any time
    tick_s: float = 0.05
    status_every_s: float = 1.0
    lease_s: float = 120.0  # a callback being dialled by a worker that died is dialled again after this

    @classmethod
    def from_settings(cls, settings: Settings) -> QueueOptions:
        """The `[queue]` settings: groups, agents, trunk, callback threshold and hours, transfer."""
        host, _, port = settings.queue_trunk.rpartition(":")
        open_h, close_h = hours_span("queue_callback_hours", settings.queue_callback_hours)
        quiet = hours_span("queue_quiet_hours", settings.queue_quiet_hours) if settings.queue_quiet_hours else (0, 0)
        return cls(agents=settings.queue_agents, groups=settings.queue_groups,
                   trunk=(host, int(port)) if host else None,
                   policy=QueuePolicy(offer_callback_over_s=settings.queue_callback_threshold_s),
                   hours=CallingHours(open_h, close_h, quiet[0], quiet[1], settings.tz),
                   desk=DeskPolicy(transfer=settings.queue_transfer, refer_busy_s=settings.queue_refer_busy_s),
                   lease_s=settings.queue_callback_lease_s)


def call_row(c: LiveCall) -> dict[str, Any]:
    """A call in progress as the heartbeat carries it to the other nodes' consoles."""
    return {"call_id": c.call_id, "caller": c.caller, "started": c.started.isoformat(), "state": c.state,
            "elderly": c.elderly, "urgent": c.urgent}


class HotlineQueue:
    """Everything the server needs to queue callers; `desk.handle` is what a call's transfer does."""

    def __init__(self, settings: Settings, options: QueueOptions, prompts: PromptLibrary, tickets: TicketStore,
                 live: LiveState, *, place_call: PlaceCall, bridge: Bridge,
                 inband: Callable[[], DigitDetector] | None = None) -> None:
        self.options, self.tickets = options, tickets
        url = queue_url(settings)
        self.queue: CallQueue
        if settings.queue_database_url:  # one queue for the centre, in PostgreSQL
            self.queue = SharedQueue(list(options.groups), time.time, Centre.open(url, settings.node_id),
                                     options.policy, wake=Wakeup(url, settings.node_id), lapse_s=settings.queue_node_timeout_s,
                                     live=lambda: [call_row(c) for c in live.local_calls()],
                                     console=f"http://{settings.console_host}:{settings.console_port}/",
                                     link=CentreLink())  # the database's work off the event loop
        else:
            self.queue = CallQueue(list(options.groups), time.time, options.policy)
        self.agents = AgentDirectory(url, options.agents)
        self.agents.populate(self.queue)  # in their durable states (available, signed out ...)
        self.store = CallbackStore(url, hours=options.hours)
        self.desk = QueueDesk(self.queue, prompts, store=self.store, place_call=place_call, bridge=bridge,
                              trunk=options.trunk, policy=options.desk, live=live)
        dialler = CallbackDialler(prompts, place_call=place_call, bridge=bridge, trunk=options.trunk, inband=inband)
        self.runner = QueueRunner(self.queue, self.store, desk=self.desk, dialback=dialler, tick_s=options.tick_s,
                                  owner=lease_owner(settings.node_id), lease_s=options.lease_s,
                                  on_failed=self._note_failure)
        self.metrics = QueueMetrics(self.queue, self.store)
        self.status_path = snapshot_path(settings.data_dir)
        live.queue_source, live.callbacks_source = self.live_queue, self.live_callbacks
        if isinstance(self.queue, SharedQueue):
            self.node, self.live = settings.node_id, live
            live.calls_source = self.live_calls
            self.agents.live_states = self.queue.agent_states

    def reconfigure(self, settings: Settings) -> None:
        """Apply reloaded `[[queue.agents]]` (on SIGHUP); the desks themselves only change with a restart."""
        if settings.queue_groups != tuple(self.queue.groups.values()):
            log.error("[[queue.groups]] changed: restart the server to apply it; the operators were not reloaded")
            return
        changes = self.agents.reconfigure(settings.queue_agents, self.queue)
        log.info("operators reloaded: %s", " ".join(changes) or "no change")

    def live_queue(self) -> list[QueueEntry]:
        """The console's view of who waits: live callers and the callbacks keeping their places."""
        now = self.queue.clock()
        entries = []
        for q in self.queue.queued():
            caller = self.desk.caller(q.call_id)
            if caller is None and q.callback:
                caller = self.store.get(int(q.call_id.removeprefix("cb-"))).number
            if caller is None:  # another node's caller: the number its heartbeat carried
                caller = self._elsewhere(q.call_id)
            wait = self.queue.expected_wait(q.call_id)
            entries.append(QueueEntry(q.call_id, caller, self.queue.position(q.call_id), now - q.entered,
                                      wait if math.isfinite(wait) else None,
                                      "" if q.priority == Priority.NORMAL else q.priority.name.lower()))
        return entries

    def _elsewhere(self, call_id: str) -> str:
        """The number of a caller waiting on another node, from that node's latest heartbeat; until it has told,
        which node holds the caller."""
        if not isinstance(self.queue, SharedQueue):
            return ""  # one box: a caller who has just left
        for rows in self.queue.live_by_node.values():
            for row in rows:
                if row["call_id"] == call_id:
                    return str(row["caller"])
        view = self.queue.view or {}
        node = next((str(c["node"]) for c in view.get("queue", []) if c["call_id"] == call_id), "")
        return f"on node {node}" if node else "on another node"

    def live_calls(self) -> list[LiveCall]:
        """Every node's calls in progress: this node's as they are, the others' as their last heartbeat said."""
        assert isinstance(self.queue, SharedQueue)
        calls = [replace(c, line=self.node) for c in self.live.local_calls()]
        for node, rows in self.queue.live_by_node.items():  # as read at the latest beat, off the event loop
            if node != self.node:
                calls += [LiveCall(r["call_id"], r["caller"], datetime.fromisoformat(r["started"]), r["state"], node,
                                   r["elderly"], r["urgent"]) for r in rows]
        return calls

    def live_callbacks(self) -> list[CallbackEntry]:
        queued = {q.call_id for q in self.queue.queued()}
        entries = []
        for cb in self.store.outstanding():
            cid = callback_call_id(cb.id)
            entries.append(CallbackEntry(str(cb.id), cb.number, datetime.fromtimestamp(cb.entered, timezone.utc),
                                         self.queue.position(cid) if cid in queued else None,
                                         "waiting" if cb.status == "pending" else cb.status, cb.attempts))
        return entries

    async def run(self, stop: asyncio.Event) -> None:
        """Restore pending callbacks at their places, then tick and publish the status until `stop`."""
        restored = self.runner.restore()
        if restored:
            log.info("%d pending callbacks keep their places in the queue", restored)
        try:
            await asyncio.gather(self.runner.run(stop), self._publish(stop))
        finally:
            if isinstance(self.queue, SharedQueue):
                self.queue.close()

    async def _publish(self, stop: asyncio.Event) -> None:
        trouble = ""  # a full disk must not stop the queue, nor fill the log: one line when it changes
        while True:
            try:
                now = self._publish_once()
            except Exception as exc:  # not the storage: a bug, with its traceback when it first shows
                if repr(exc) != trouble:
                    log.exception("cannot publish the queue status")
                trouble = repr(exc)
            else:
                if now != trouble:
                    if now:
                        log.error("cannot publish the queue status: %s", now)
                    else:
                        log.info("the queue status is published again")
                trouble = now
            try:
                await asyncio.wait_for(stop.wait(), self.options.status_every_s)
                return
            except TimeoutError:
                pass

    def _publish_once(self) -> str:
        """Sync the operators' states, write the status file and the gauges; "" or what could not be written."""
        try:
            self.agents.sync(self.queue)  # sign-ins/outs from `ivr queue agent` and the console
            pausing = self.agents.pausing()
        except (SQLAlchemyError, OSError) as exc:
            return f"{database_location(self.agents.engine)}: {problem(exc)}"
        try:
            write_snapshot(self.queue, self.status_path, pausing)
        except OSError as exc:
            return f"{self.status_path}: {problem(exc)}"
        try:
            self.metrics.refresh(pausing)
        except SQLAlchemyError as exc:
            return f"{database_location(self.store.engine)}: {problem(exc)}"
        return ""

    def _note_failure(self, cb: Callback) -> None:
        if not cb.ticket:
            return
        note = f"回拨失败：{cb.attempts}次未接通（{cb.last_result}）"
        try:
            old = self.tickets.get(cb.ticket).note
            self.tickets.update(cb.ticket, "queue", {"note": f"{old}\n{note}".strip()})
        except Exception:
            log.exception("callback %d failed but its ticket %s could not be noted", cb.id, cb.ticket)
