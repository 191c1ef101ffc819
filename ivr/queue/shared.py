"""The centre's queue seen from one node: a CallQueue whose callers, callbacks and operators live in PostgreSQL
(`ivr.queue.centre`), shared by every node of a centre.

The node keeps a mirror of the centre's queue (every node's callers and callbacks, every operator's state) and
answers from it as the single box does: positions and expected waits are the centre's. What changes the queue goes
to the database first: a caller queued here gets the centre's arrival order, hangs up or books a callback there;
an operator's state changes only from the state this node saw (an operator on a call only by the node holding the
call). Free operators are given to the best waiting calls of the whole centre by `Centre.assign`, which any node
may run and two cannot both win: a node runs it at once when it has queued a caller or freed an operator, and when
its mirror shows a free operator and a caller for it. The node holding a caller so assigned is woken by
PostgreSQL (NOTIFY with its node id, `Wakeup`) and hands out the Connect. The mirror is refreshed then, after a
change of this node's that found the row changed, and every `sync_every_s`, when the node also beats and gives up
nodes whose heartbeat lapsed. While the database cannot be reached the node goes on
with the calls it has (new callers are refused: their flow takes a message), and writes that failed are made again
once it is back.
"""
from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ivr.config import AgentGroup
from ivr.queue.call_queue import CallQueue, QueuePolicy
from ivr.queue.centre import LOST, Centre, CentreCall
from ivr.queue.model import (
    Agent, AgentState, Priority, QueuedCall, QueueEvent, Rejected,
)
from ivr.queue.wakeup import Wakeup
from ivr.storage import problem

__all__ = ["SharedQueue"]

log = logging.getLogger(__name__)


class SharedQueue(CallQueue):
    """A CallQueue over the centre's database. `wake` (None: no LISTEN) makes the node look at once when the queue
    changes; without it, or when the notification is missed, the node looks every `sync_every_s`. Nodes silent for
    `lapse_s` are given up. `live` gives the heartbeat this node's calls in progress (for every node's console);
    `console` is where its operator console is (shown in `ivr cluster status`)."""

    def __init__(self, groups: list[AgentGroup], clock: Callable[[], float], centre: Centre,
                 policy: QueuePolicy | None = None, handle_prior_s: float = 240.0, *, wake: Wakeup | None = None,
                 sync_every_s: float = 1.0, lapse_s: float = 5.0,
                 live: Callable[[], list[dict[str, Any]]] = list, console: str = "") -> None:
        super().__init__(groups, clock, policy, handle_prior_s)
        self.centre, self.wake, self.live = centre, wake, live
        self.sync_every_s, self.lapse_s = sync_every_s, lapse_s
        self.lost_nodes: dict[str, int] = {}  # node -> callers taken out when it was given up (seen here)
        self.retries: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []  # writes to make once the database is back
        self.trouble = ""  # why the database cannot be reached ("" when it can)
        self._own: dict[str, QueuedCall] = {}  # this node's live callers, waiting or being put through
        self._mirroring = False  # applying the database's state: nothing to write back
        self._ending_wrap_up = False
        self._stale = True
        self._fresh = False
        self._freed = False  # this node has just freed an operator or queued a caller: assign at its next tick
        self._mine: list[CentreCall] = []  # calls given an operator that this node puts through, as last read
        self._beat_at = -math.inf
        self._tallied = centre.tallies()  # the centre's arrivals and hang-ups as last read
        # this node's own arrivals and hang-ups counted at once, not yet seen in the centre's tallies
        self._counted_here: defaultdict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
        self.lost_callers = centre.start(clock(), console)
        if self.lost_callers:
            log.warning("%d caller(s) this node had queued when it last stopped left the queue", self.lost_callers)

    # -- callers ----------------------------------------------------------------------------------------------
    def enqueue(self, call_id: str, group: str, priority: Priority = Priority.NORMAL, ticket: str = "",
                callback: bool = False, entered: float | None = None) -> list[QueueEvent]:
        """As CallQueue.enqueue, in the centre's queue; Rejected while its database cannot be reached."""
        try:
            events = super().enqueue(call_id, group, priority, ticket, callback, entered)
        except SQLAlchemyError as exc:
            self._down(exc)
            self.stats.rejected += not callback
            return [Rejected(call_id, "queue database unavailable")]
        call = self._calls.get(call_id)
        if call is not None and not callback:
            self._own[call_id] = call
        self._freed = self._freed or call is not None  # a caller to place: assign at the next tick
        return events

    def _arrived(self, group: str, priority: Priority) -> None:
        super()._arrived(group, priority)  # at once; the other nodes' from the centre's tallies (`_count_centre`)
        self._counted_here[(group, int(priority))][0] += 1

    def _hung_up(self, group: str, priority: Priority) -> None:
        super()._hung_up(group, priority)
        self._counted_here[(group, int(priority))][1] += 1

    def _place(self, call_id: str, group: str, priority: Priority, entered: float, ticket: str,
               callback: bool) -> int:
        rank = entered - self.policy.age_credit_s.get(priority, 0.0)
        return self.centre.add_call(call_id, group, int(priority), entered, rank, ticket, callback)

    def abandon(self, call_id: str) -> None:
        self._own.pop(call_id, None)  # a Connect still on its way for it frees the operator, uncounted
        super().abandon(call_id)
        self._write(self.centre.abandon_call, call_id)

    def remove(self, call_id: str) -> None:
        self._own.pop(call_id, None)
        super().remove(call_id)
        self._write(self.centre.drop_call, call_id)

    def connected(self, call_id: str) -> QueuedCall:
        call = super().connected(call_id)
        self._own.pop(call_id, None)
        self._write(self.centre.drop_call, call_id)
        return call

    def connect_failed(self, call_id: str, agent_id: str) -> None:
        super().connect_failed(call_id, agent_id)
        self._write(self.centre.back_to_waiting, call_id)
        self._freed = True

    # -- operators --------------------------------------------------------------------------------------------
    def add_agent(self, agent_id: str, uri: str, groups: tuple[str, ...],
                  state: AgentState = AgentState.AVAILABLE) -> Agent:
        """The operator joins with the centre's state for it; `state` is set when the centre has it signed out."""
        now = self.clock()
        self.centre.add_agent(agent_id, uri, groups, now)
        self._mirroring = True
        try:
            agent = super().add_agent(agent_id, uri, groups, AgentState.SIGNED_OUT)
            row = self.centre.agents().get(agent_id)
            if row is not None:
                self._mirror_agent(agent, row.state, row.wrap_up_until, row.call_id)
        finally:
            self._mirroring = False
        if agent.state == AgentState.SIGNED_OUT and state == AgentState.AVAILABLE:
            self.set_state(agent_id, state)
        return agent

    def call_ended(self, agent_id: str, observed: bool = True) -> None:
        agent = self._agent(agent_id)
        if agent.state != AgentState.ON_CALL:  # the centre gave the operator back (this node was given up)
            log.warning("agent %s: call ended after the centre had freed the operator", agent_id)
            self._started.pop(agent_id, None)
            return
        super().call_ended(agent_id, observed)

    def _set(self, agent: Agent, state: AgentState) -> None:
        before = agent.state
        super()._set(agent, state)
        if self._mirroring or state == before or state == AgentState.ON_CALL:  # on a call: only by `assign`
            return
        if before == AgentState.ON_CALL:
            expect: AgentState | None = AgentState.ON_CALL
        else:
            expect = AgentState.WRAP_UP if self._ending_wrap_up else None
        until = agent.wrap_up_until if state == AgentState.WRAP_UP else 0.0
        self._write(self.centre.set_agent, agent.agent_id, state, self.clock(), expect, until)
        self._freed = self._freed or state == AgentState.AVAILABLE

    def _end_wrap_ups(self, now: float) -> None:
        self._ending_wrap_up = True
        try:
            super()._end_wrap_ups(now)
        finally:
            self._ending_wrap_up = False

    # -- time -------------------------------------------------------------------------------------------------
    def tick(self) -> list[QueueEvent]:
        """Sync with the centre (on a notification, after a change, every `sync_every_s`), then as CallQueue.tick:
        the Connects are those of this node's callers and of the callbacks it assigned."""
        now = self.clock()
        try:
            fresh = self._sync(now)
        except SQLAlchemyError as exc:
            self._down(exc)
            fresh = False
        self._fresh = fresh
        return super().tick()

    def _assign(self, now: float) -> list[QueueEvent]:
        """Assign when the mirror shows a free operator and a caller for it (after a refresh, or when this node
        has just freed one), then hand out this node's Connects."""
        if not (self._fresh or self._freed):
            return []
        changed, self._freed = self._freed, False
        try:  # what this node changed may be news its mirror lacks: assign without asking the mirror
            if changed or self._could_assign():
                made, self._mine = self.centre.assign(now)
                self._stale = self._stale or bool(made)
            return self._pickup(now)
        except SQLAlchemyError as exc:
            self._down(exc)
            return []

    def _could_assign(self) -> bool:
        return any(self._keys[g] for a in self._available for g in self.agents[a].groups)

    def _pickup(self, now: float) -> list[QueueEvent]:
        """Connects for the calls the centre gave an operator that this node puts through."""
        events: list[QueueEvent] = []
        mine, self._mine = self._mine, []  # each read is handed out once
        for row in mine:
            agent = self.agents.get(row.agent_id or "")
            if row.call_id in self._held_calls or agent is None:
                continue
            call = self._own.get(row.call_id) or QueuedCall(row.call_id, row.group, Priority(row.priority),
                                                             row.entered, row.seq, row.ticket, row.callback)
            if row.call_id in self._calls:
                self._remove(self._calls[row.call_id])
            self._mirroring = True
            try:
                events.append(self._hand(call, agent, now, count=row.call_id in self._own or row.callback))
            finally:
                self._mirroring = False
        return events

    def _sync(self, now: float) -> bool:
        """Beat, retry failed writes and give up lapsed nodes every `sync_every_s`; refresh the mirror when
        something changed. True when the mirror was refreshed."""
        woken = self.wake.take() if self.wake is not None else False
        if now - self._beat_at >= self.sync_every_s:
            self._beat_at = now
            calls = self.live()
            if self.centre.beat(now, len(calls), self.own_waiting, calls) == LOST:
                self._rejoin()
            self._retry()
            self.lost_nodes.update(self.centre.reap(now, self.lapse_s))
            if self.trouble:
                log.info("the queue database is back")
                self.trouble = ""
            woken = True
        if not (woken or self._stale):
            return False
        self._stale = False
        self._refresh()
        return True

    def _refresh(self) -> None:
        """Mirror the centre: every operator's state, every waiting call in the centre's order."""
        snap = self.centre.snapshot()
        rows, waiting, self._mine = snap.agents, {c.call_id: c for c in snap.waiting}, snap.mine
        self._advance()
        self._count_centre(snap.tallies)
        self._mirroring = True
        try:
            for aid, agent in self.agents.items():
                row = rows.get(aid)
                if row is not None:
                    self._mirror_agent(agent, row.state, row.wrap_up_until, row.call_id)
            for call in list(self._calls.values()):
                if call.call_id not in waiting:
                    self._remove(call)
            for c in waiting.values():
                if c.call_id not in self._calls and c.group in self.groups:
                    self._insert(self._own.get(c.call_id) or QueuedCall(
                        c.call_id, c.group, Priority(c.priority), c.entered, c.seq, c.ticket, c.callback))
        finally:
            self._mirroring = False

    def _count_centre(self, tallies: dict[tuple[str, int], tuple[int, int]]) -> None:
        """The other nodes' arrivals and hang-ups since the last refresh (the centre's tallies less this node's own,
        counted when they happened) feed this node's drain rates; those before this node started are not news."""
        before, self._tallied = self._tallied, tallies
        for (group, priority), counts in tallies.items():
            rates = self.rates.get(group)
            if rates is None:
                continue
            was, here = before.get((group, priority), (0, 0)), self._counted_here[(group, priority)]
            others = [0, 0]
            for i in (0, 1):  # arrived, hung up
                new = counts[i] - was[i]
                mine = min(new, here[i])
                here[i] -= mine
                others[i] = new - mine
            for _ in range(others[0]):
                rates.arrived(priority)
            for _ in range(others[1]):
                rates.abandoned()

    def _mirror_agent(self, agent: Agent, state: AgentState, wrap_up_until: float, call_id: str | None) -> None:
        agent.wrap_up_until, agent.call_id = wrap_up_until, call_id
        if state != agent.state:
            self._set(agent, state)
            if state != AgentState.ON_CALL:
                self._started.pop(agent.agent_id, None)

    def _rejoin(self) -> None:
        """This node was given up while it could not beat: its callers still waiting queue again at their rank."""
        waiting = [c for cid, c in self._own.items() if cid not in self._held_calls]
        log.warning("the centre had given this node up: %d waiting caller(s) queued again", len(waiting))
        for call in waiting:
            if call.call_id in self._calls:
                self._remove(call)
            call.seq = self._place(call.call_id, call.group, call.priority, call.entered, call.ticket, False)
        self._stale = True

    # -- the database away ------------------------------------------------------------------------------------
    def _write(self, op: Callable[..., Any], *args: Any) -> None:
        """A write to the centre now, or once the database is back; one that finds the row changed meanwhile
        means the mirror is behind."""
        try:
            if op(*args) is False:
                self._stale = True
        except SQLAlchemyError as exc:
            self._down(exc)
            self.retries.append((op, args))

    def _retry(self) -> None:
        todo, self.retries = self.retries, []
        for i, (op, args) in enumerate(todo):
            try:
                op(*args)
            except SQLAlchemyError:
                self.retries = todo[i:] + self.retries
                raise
        if todo:
            log.info("%d queue change(s) made while the database was away are written", len(todo))
            self._stale = True

    def _down(self, exc: SQLAlchemyError) -> None:
        why = problem(exc)
        if why != self.trouble:
            log.error("the queue database cannot be reached (%s): calls in progress go on", why)
        self.trouble = why
        self._beat_at = self.clock()  # try again in `sync_every_s`

    @property
    def own_waiting(self) -> int:
        """This node's callers waiting in the centre's queue."""
        return sum(1 for cid in self._own if cid not in self._held_calls)

    def close(self) -> None:
        """This node stops: it leaves nothing in the centre's queue."""
        if self.wake is not None:
            self.wake.close()
        try:
            self.centre.stop(self.clock())
        except SQLAlchemyError as exc:
            log.error("the queue database cannot be reached to sign this node off: %s", problem(exc))

