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

import heapq
import logging
import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ivr.config import AgentGroup
from ivr.queue.call_queue import CallQueue, QueuePolicy
from ivr.queue.centre import LOST, Centre, CentreCall, Snapshot
from ivr.queue.link import CentreLink, Look, Seen, look
from ivr.queue.model import (
    Agent, AgentState, Priority, QueuedCall, QueueError, QueueEvent, Rejected,
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
                 live: Callable[[], list[dict[str, Any]]] = list, console: str = "",
                 link: CentreLink | None = None) -> None:
        super().__init__(groups, clock, policy, handle_prior_s)
        self.centre, self.wake, self.live = centre, wake, live
        self.link = link or CentreLink(threaded=False)
        self.sync_every_s, self.lapse_s = sync_every_s, lapse_s
        self.lost_nodes: dict[str, int] = {}  # node -> callers taken out when it was given up (seen here)
        self.retries: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []  # writes to make once the database is back
        self.trouble = ""  # why the database cannot be reached ("" when it can)
        self._own: dict[str, QueuedCall] = {}  # this node's live callers, waiting or being put through
        self._mirroring = False  # applying the database's state: nothing to write back
        self._ending_wrap_up = False
        self._stale = True
        self._freed = False  # this node has just freed an operator or queued a caller: assign at its next look
        self._mine: list[CentreCall] = []  # calls given an operator that this node puts through, as last read
        self._beat_at = -math.inf
        self._looking = False  # a sync is on the link
        self._provisional = 0  # the latest place given before the centre's answer (counting down from -1)
        self._writes = 0  # writes submitted (a snapshot read before the latest may lack them)
        self._agent_written: dict[str, int] = {}  # operator -> the write that last changed it here
        self._handed: set[tuple[str, float | None]] = set()  # assignments this node has handed out (Connects)
        self._dropped: list[QueueEvent] = []  # for callers this node can no longer keep waiting
        self.view: dict[str, Any] | None = None  # the whole centre as read at the latest beat (Centre.view)
        self.live_by_node: dict[str, list[dict[str, Any]]] = {}  # every node's calls in progress, likewise
        self._tallied = centre.tallies()  # the centre's arrivals and hang-ups as last read
        # this node's own arrivals and hang-ups counted at once, not yet seen in the centre's tallies
        self._counted_here: defaultdict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
        self.lost_callers = centre.start(clock(), console)
        if self.lost_callers:
            log.warning("%d caller(s) this node had queued when it last stopped left the queue", self.lost_callers)

    # -- callers ----------------------------------------------------------------------------------------------
    def enqueue(self, call_id: str, group: str, priority: Priority = Priority.NORMAL, ticket: str = "",
                callback: bool = False, entered: float | None = None) -> list[QueueEvent]:
        """As CallQueue.enqueue, in the centre's queue; Rejected while its database cannot be reached. The caller
        is placed in the node's mirror at once and written to the centre in the background."""
        if self.trouble and not callback:
            self.stats.rejected += 1
            return [Rejected(call_id, "queue database unavailable")]
        events = super().enqueue(call_id, group, priority, ticket, callback, entered)
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
        """The call's place in the centre's arrival order (the tie-break of equal ranks); until the centre has
        answered, a place of this node's own below every place the centre gives, then the centre's."""
        rank = entered - self.policy.age_credit_s.get(priority, 0.0)
        placed: list[int] = []

        def then(seq: int) -> None:
            call = self._calls.get(call_id)
            if call is None or call.seq >= 0:
                placed.append(seq)  # answered at once (or the caller has gone)
            else:
                self._reseat(call, seq)

        self._write(self.centre.add_call, call_id, group, int(priority), entered, rank, ticket, callback, then=then)
        if placed:
            return placed[0]
        self._provisional -= 1
        return self._provisional

    def _reseat(self, call: QueuedCall, seq: int) -> None:
        self._remove(call)
        call.seq = seq
        self._insert(call)
        if not call.callback and math.isfinite(call.next_announce):
            heapq.heappush(self._announce_due, (call.next_announce, seq, call.call_id))

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
        self._agent_written[agent.agent_id] = self._writes
        self._freed = self._freed or state == AgentState.AVAILABLE

    def _end_wrap_ups(self, now: float) -> None:
        self._ending_wrap_up = True
        try:
            super()._end_wrap_ups(now)
        finally:
            self._ending_wrap_up = False

    # -- time -------------------------------------------------------------------------------------------------
    def tick(self) -> list[QueueEvent]:
        """Apply what the centre answered since the last tick, ask it again when due (on a notification, after a
        change, every `sync_every_s`), then as CallQueue.tick: the Connects are those of this node's callers and
        of the callbacks it assigned; a Rejected for each caller of a node the centre gave up."""
        self.link.collect()
        events = super().tick()
        dropped, self._dropped = self._dropped, []
        return dropped + events

    def _assign(self, now: float) -> list[QueueEvent]:
        """The centre assigns (in `_look`, after this tick's wrap-ups ended): here, the Connects for the calls it
        gave this node to put through, as far as its answer is in."""
        if not self._looking:
            self._look(now)
        return self._pickup(now) if self._mine else []

    def _look(self, now: float) -> None:
        """Ask the centre, on the link: beat, retry and give up lapsed nodes every `sync_every_s`; read the mirror
        when something changed; assign when this node freed an operator or queued a caller, or the centre shows
        a free operator and a call for it."""
        woken = self.wake.take() if self.wake is not None else False
        beat = now - self._beat_at >= self.sync_every_s
        if beat:
            self._beat_at = now
        mirror = beat or woken or self._stale
        if not (mirror or self._freed):
            return
        calls = self.live() if beat else []
        retries, self.retries = (self.retries, []) if beat else ([], self.retries)
        ask = Look(now, beat, calls, self.own_waiting, retries, self.lapse_s, mirror, self._freed,
                   {aid: a.groups for aid, a in self.agents.items()})
        self._stale = self._freed = False
        self._looking = True
        writes = self._writes
        self.link.submit(lambda: look(self.centre, ask), lambda seen, error: self._seen(ask, writes, seen, error))

    def _seen(self, ask: Look, writes: int, seen: Seen | None, error: BaseException | None) -> None:
        """Apply a sync's answer (on the queue's thread)."""
        self._looking = False
        if seen is None:
            raise error or QueueError("the centre's sync answered nothing")
        self.retries = seen.retries_left + self.retries
        if seen.retried:
            log.info("%d queue change(s) made while the database was away are written", seen.retried)
            self._stale = True
        if seen.before == LOST:
            self._given_up()
        self.lost_nodes.update(seen.lost)
        if seen.view is not None:
            self.view, self.live_by_node = seen.view, seen.live or {}
        if seen.snapshot is not None:
            self._refresh(seen.snapshot, writes)
            self._stale = self._stale or writes != self._writes  # this node changed things meanwhile
        if seen.mine is not None:
            self._mine = seen.mine
            # an assignment no longer in the centre's answer was put through and dropped: it cannot come back
            self._handed &= {(c.call_id, c.assigned_at) for c in seen.mine}
        self._stale = self._stale or bool(seen.made)
        if seen.error is not None:
            self._down(seen.error)
            self._freed = self._freed or ask.assign
        elif ask.beat and self.trouble:
            log.info("the queue database is back")
            self.trouble = ""

    def _pickup(self, now: float) -> list[QueueEvent]:
        """Connects for the calls the centre gave an operator that this node puts through."""
        events: list[QueueEvent] = []
        mine, self._mine = self._mine, []  # each read is handed out once
        for row in mine:
            agent = self.agents.get(row.agent_id or "")
            if row.call_id in self._held_calls or agent is None or (row.call_id, row.assigned_at) in self._handed:
                continue  # (an answer read before this node's drop of a call it put through landed)
            self._handed.add((row.call_id, row.assigned_at))
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

    def _refresh(self, snap: Snapshot, writes: int) -> None:
        """Mirror the centre as read after this node's first `writes` writes: every operator's state (but those this
        node changed since: its change is newer), every waiting call in the centre's order (this node's own
        waiting callers stay: the centre may not have their write yet)."""
        rows, waiting = snap.agents, {c.call_id: c for c in snap.waiting}
        self._advance()
        self._count_centre(snap.tallies)
        self._mirroring = True
        try:
            for aid, agent in self.agents.items():
                row = rows.get(aid)
                if row is not None and self._agent_written.get(aid, 0) <= writes:
                    self._mirror_agent(agent, row.state, row.wrap_up_until, row.call_id)
            for call in list(self._calls.values()):
                if call.call_id not in waiting and call.call_id not in self._own:
                    self._remove(call)
            for c in waiting.values():
                if c.call_id not in self._calls and c.group in self.groups and c.node != self.centre.node:
                    self._insert(QueuedCall(c.call_id, c.group, Priority(c.priority), c.entered, c.seq, c.ticket,
                                            c.callback))
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

    def _given_up(self) -> None:
        """The centre gave this node up while it could not beat: its waiting callers were taken out of the queue
        and counted lost with it, so they are not queued again (they would count twice and jump the callers who
        came since); each is told it cannot wait (a Rejected: its flow takes a message)."""
        waiting = [c for cid, c in self._own.items() if cid not in self._held_calls]
        log.warning("the centre had given this node up: %d waiting caller(s) leave a message instead", len(waiting))
        for call in waiting:
            del self._own[call.call_id]
            if call.call_id in self._calls:
                self._remove(call)
            self._dropped.append(Rejected(call.call_id, "the centre gave this node up"))

    # -- the database away ------------------------------------------------------------------------------------
    def _write(self, op: Callable[..., Any], *args: Any, then: Callable[[Any], None] | None = None) -> None:
        """A write to the centre, on the link (in order), or kept for when the database is back (after the ones
        kept already, so the order holds); one that finds the row changed meanwhile means the mirror is behind."""
        self._writes += 1
        if self.retries:
            self.retries.append((op, args))
            return
        self.link.submit(lambda: op(*args), lambda result, error: self._written(op, args, result, error, then))

    def _written(self, op: Callable[..., Any], args: tuple[Any, ...], result: Any, error: BaseException | None,
                 then: Callable[[Any], None] | None) -> None:
        if isinstance(error, SQLAlchemyError):
            self._down(error)
            self.retries.append((op, args))
        elif isinstance(error, QueueError):
            log.error("the centre refused a change: %s", error)
        elif error is not None:
            raise error
        elif result is False:
            self._stale = True
        elif then is not None:
            then(result)

    def _down(self, exc: SQLAlchemyError) -> None:
        why = problem(exc)
        if why != self.trouble:
            log.error("the queue database cannot be reached (%s): calls in progress go on", why)
        self.trouble = why
        self._beat_at = self.clock()  # try again in `sync_every_s`

    def agent_states(self) -> dict[str, tuple[AgentState, float]]:
        """Every operator's state and since when, as the centre had it at the latest beat (the one source of every
        node's console: the nodes' own mirrors may disagree for up to a second)."""
        view = self.view or {}
        return {aid: (AgentState(a["state"]), a["since"]) for aid, a in view.get("agents", {}).items()}

    @property
    def own_waiting(self) -> int:
        """This node's callers waiting in the centre's queue."""
        return sum(1 for cid in self._own if cid not in self._held_calls)

    def close(self) -> None:
        """This node stops: it leaves nothing in the centre's queue."""
        if self.wake is not None:
            self.wake.close()
        self.link.close()
        try:
            self.centre.stop(self.clock())
        except SQLAlchemyError as exc:
            log.error("the queue database cannot be reached to sign this node off: %s", problem(exc))

