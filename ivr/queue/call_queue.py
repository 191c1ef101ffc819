"""The call queue: pure logic driven by an injected clock; the caller's channel plays the events it returns."""
from __future__ import annotations

import bisect
import heapq
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ivr.config import AgentGroup
from ivr.queue.estimate import (
    ERROR_FLOOR_S, FEW_AGENTS, FEW_AHEAD, DrainRates, DrainView, HandleTimes, departures, projected_wait,
    relative_error, spoken_minutes, staffing_free_at,
)
from ivr.queue.model import (
    Agent, AgentState, Announce, Connect, OfferCallback, Priority, QueuedCall, QueueError, QueueEvent,
    Rejected, UnknownAgent, UnknownCall,
)

__all__ = ["QueuePolicy", "QueueStats", "CallQueue"]

log = logging.getLogger(__name__)


MIN_HANDLE_S = 1.0  # the shortest mean handle time an estimate assumes


@dataclass(frozen=True)
class QueuePolicy:
    """How the queue behaves. `age_credit_s[p]` is how far ahead of a NORMAL caller of the same age class p ranks:
    an elderly caller overtakes normal callers who came at most that many seconds earlier (so nobody starves)."""
    max_length: int = 200
    announce_every_s: float = 60.0
    offer_callback_over_s: float = 180.0
    age_credit_s: dict[Priority, float] = field(default_factory=lambda: {
        Priority.URGENT: 600.0, Priority.ELDERLY: 300.0, Priority.NORMAL: 0.0})
    service_levels_s: tuple[float, ...] = (15.0, 20.0)


@dataclass
class QueueStats:
    """Counters since start, and how the waits callers were told compare with the waits they had.

    `estimate_pairs` holds (told at entry, actual wait) for every answered live caller; `estimate_errors` the
    relative error |told - actual| / max(actual, 30 s) of those whose told or actual wait was at least 30 s (chosen
    on both, so short waits told long are kept); `abs_errors_s` |told - actual| of every answered live caller.
    Abandoned callers' actual wait is censored (it would have been at least what they waited): `censored_pairs`
    holds (told at entry, waited before hanging up). `reestimate_pairs` holds (told at a later announcement,
    actual wait from then) for answered live callers.
    """
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    rejected: int = 0
    callbacks_booked: int = 0
    answered_within: dict[float, int] = field(default_factory=dict)
    estimate_errors: list[float] = field(default_factory=list)
    abs_errors_s: list[float] = field(default_factory=list)
    estimate_pairs: list[tuple[float, float]] = field(default_factory=list)
    censored_pairs: list[tuple[float, float]] = field(default_factory=list)
    reestimate_pairs: list[tuple[float, float]] = field(default_factory=list)

    def service_level(self, within_s: float) -> float:
        """Share of live calls reaching a person within `within_s` among answered + abandoned (after 5 s grace)."""
        base = self.answered + self.abandoned
        return self.answered_within.get(within_s, 0) / base if base else 1.0


class CallQueue:
    """Priority queue of callers and callbacks per agent group, with agents and expected waits.

    Every mutating call returns the events to play/act on; `tick()` must be called regularly (e.g. every second)
    to emit due announcements, end wrap-ups and hand callers to free agents.
    """

    def __init__(self, groups: list[AgentGroup], clock: Callable[[], float],
                 policy: QueuePolicy | None = None, handle_prior_s: float = 240.0) -> None:
        if not groups:
            raise QueueError("at least one agent group is needed")
        self.groups = {g.name: g for g in groups}
        self.clock = clock
        self.policy = policy or QueuePolicy()
        self.agents: dict[str, Agent] = {}
        self._members: dict[str, dict[str, Agent]] = {g.name: {} for g in groups}
        self.stats = QueueStats(answered_within={s: 0 for s in self.policy.service_levels_s})
        self._handle = {g.name: HandleTimes(handle_prior_s) for g in groups}
        self._keys: dict[str, list[tuple[float, int]]] = {g.name: [] for g in groups}
        self._calls: dict[str, QueuedCall] = {}
        self._by_key: dict[tuple[float, int], str] = {}
        self._started: dict[str, float] = {}  # agent id -> start of current call
        self._unseen: dict[str, float] = {}  # agent id -> when a call handed off by REFER counts as ended
        self._seq = 0
        self.rates = {g.name: DrainRates() for g in groups}
        self._idle = {g.name: 0 for g in groups}  # available agents per group
        self._staffed = {g.name: 0 for g in groups}  # signed-in agents per group
        self._live = {g.name: 0 for g in groups}  # queued calls that are not callbacks
        self._held_calls: dict[str, QueuedCall] = {}
        self._wrapping: set[str] = set()
        self._announce_due: list[tuple[float, int, str]] = []  # heap of (due, seq, call id)
        self._available: set[str] = set()

    # -- agents -----------------------------------------------------------------------------------------------
    def add_agent(self, agent_id: str, uri: str, groups: tuple[str, ...],
                  state: AgentState = AgentState.AVAILABLE) -> Agent:
        for g in groups:
            if g not in self.groups:
                raise QueueError(f"unknown agent group {g!r}")
        agent = Agent(agent_id, uri, tuple(groups), AgentState.SIGNED_OUT, self.clock())
        for members in self._members.values():
            members.pop(agent_id, None)
        self.agents[agent_id] = agent
        for g in groups:
            self._members[g][agent_id] = agent
        self._set(agent, state)
        return agent

    def remove_agent(self, agent_id: str) -> None:
        """Take an agent out of the queue (gone from the configuration); not while on a call."""
        agent = self._agent(agent_id)
        if agent.state == AgentState.ON_CALL:
            raise QueueError(f"agent {agent_id} is on a call")
        self._set(agent, AgentState.SIGNED_OUT)
        del self.agents[agent_id]
        for members in self._members.values():
            members.pop(agent_id, None)

    def _set(self, agent: Agent, state: AgentState) -> None:
        self._advance()
        for g in agent.groups:
            self._idle[g] += (state == AgentState.AVAILABLE) - (agent.state == AgentState.AVAILABLE)
            self._staffed[g] += (state != AgentState.SIGNED_OUT) - (agent.state != AgentState.SIGNED_OUT)
        agent.state, agent.since = state, self.clock()
        self._wrapping.discard(agent.agent_id)
        self._available.discard(agent.agent_id)
        if state == AgentState.WRAP_UP:
            self._wrapping.add(agent.agent_id)
        elif state == AgentState.AVAILABLE:
            self._available.add(agent.agent_id)

    def set_state(self, agent_id: str, state: AgentState) -> None:
        """Sign an agent in (AVAILABLE) or out; ON_CALL and WRAP_UP are set by the queue itself."""
        agent = self._agent(agent_id)
        if state in (AgentState.ON_CALL, AgentState.WRAP_UP):
            raise QueueError(f"state {state.value} is set by the queue, not by hand")
        if agent.state == AgentState.ON_CALL and state == AgentState.SIGNED_OUT:
            raise QueueError(f"agent {agent_id} is on a call")
        self._set(agent, state)

    def call_ended(self, agent_id: str, observed: bool = True) -> None:
        """The agent's call ended: record the handle time (unless the end was not `observed` but presumed) and
        start wrap-up."""
        agent = self._agent(agent_id)
        if agent.state != AgentState.ON_CALL:
            raise QueueError(f"agent {agent_id} is not on a call")
        now = self.clock()
        wrap = max(self.groups[g].wrap_up_s for g in agent.groups)
        handled = now - self._started.pop(agent_id, now) + wrap
        self._unseen.pop(agent_id, None)
        if observed:
            for g in agent.groups:
                self._handle[g].observe(handled)
        agent.wrap_up_until, agent.call_id = now + wrap, None
        self._set(agent, AgentState.WRAP_UP)

    def handed_off(self, agent_id: str, busy_s: float) -> None:
        """The agent's call goes on out of the queue's sight (a blind transfer by REFER): it ends when someone
        reports the agent's state (`call_ended`) or is presumed ended `busy_s` from now."""
        if self._agent(agent_id).state != AgentState.ON_CALL:
            raise QueueError(f"agent {agent_id} is not on a call")
        self._unseen[agent_id] = self.clock() + busy_s

    def handle_time(self, group: str) -> float:
        """The mean handle time (talk and wrap-up) in `group`, from the prior and the calls seen to end."""
        return self._handle[group].mean

    def out_of_sight(self, agent_id: str) -> bool:
        """True while the agent is on a call handed off by REFER."""
        return agent_id in self._unseen

    def connect_failed(self, call_id: str, agent_id: str) -> None:
        """The agent did not answer: free the agent (signed out) and put the call back at its old place."""
        agent = self._agent(agent_id)
        agent.call_id = None
        self._set(agent, AgentState.SIGNED_OUT)
        self._started.pop(agent_id, None)
        call = self._held_calls.pop(call_id, None)
        if call is None:
            raise UnknownCall(f"no call {call_id} being connected")
        self._insert(call)
        self.stats.answered -= 1

    # -- callers ----------------------------------------------------------------------------------------------
    def enqueue(self, call_id: str, group: str, priority: Priority = Priority.NORMAL, ticket: str = "",
                callback: bool = False, entered: float | None = None) -> list[QueueEvent]:
        """Queue a caller; returns Rejected, or Announce (+ OfferCallback when the wait is over the threshold).
        A callback restored after a restart passes its original `entered` time to keep its place."""
        if group not in self.groups:
            raise QueueError(f"unknown agent group {group!r}")
        if call_id in self._calls:
            raise QueueError(f"call {call_id} is already queued")
        now = self.clock()
        if not callback and len(self._keys[group]) >= self.policy.max_length:
            self.stats.rejected += 1
            return [Rejected(call_id, "queue full")]
        self._advance()
        entered = now if entered is None else entered
        seq = self._place(call_id, group, priority, entered, ticket, callback)
        call = QueuedCall(call_id, group, priority, entered, seq, ticket, callback)
        self._insert(call)
        if callback:
            return []
        self._arrived(group, priority)
        self.stats.offered += 1
        wait = self.expected_wait(call_id)
        call.estimate_at_entry = wait
        call.next_announce = now + self.policy.announce_every_s
        heapq.heappush(self._announce_due, (call.next_announce, call.seq, call_id))
        events: list[QueueEvent] = [self._announce(call, wait)]
        if wait > self.policy.offer_callback_over_s:
            call.offered = True
            events.append(OfferCallback(call_id, wait, "threshold"))
        return events

    def offer_on_key(self, call_id: str) -> OfferCallback:
        """The caller pressed the callback key."""
        return OfferCallback(call_id, self.expected_wait(call_id), "key")

    def to_callback(self, call_id: str) -> None:
        """The caller booked a callback (already stored durably): the call keeps its place as a callback."""
        call = self._call(call_id)
        if not call.callback:
            self._advance()
            self._live[call.group] -= 1
        call.callback = True
        self.stats.callbacks_booked += 1

    def abandon(self, call_id: str) -> None:
        """The caller hung up while waiting."""
        call = self._call(call_id)
        self._advance()
        self._remove(call)
        if not call.callback:
            self.stats.abandoned += 1
            self._hung_up(call.group, call.priority)
            if math.isfinite(call.estimate_at_entry):
                self.stats.censored_pairs.append((call.estimate_at_entry, self.clock() - call.entered))

    def remove(self, call_id: str) -> None:
        """Drop a queued call without counting it (e.g. a cancelled callback)."""
        call = self._call(call_id)
        self._advance()
        self._remove(call)

    def position(self, call_id: str) -> int:
        call = self._call(call_id)
        return bisect.bisect_left(self._keys[call.group], self._key(call)) + 1

    def rank(self, call_id: str) -> float:
        """The call's place in its group's order (entry time less its class's age credit; lower is served first)."""
        return self._key(self._call(call_id))[0]

    def expected_wait(self, call_id: str) -> float:
        """Seconds until this caller is expected to reach an agent, from how the queue ahead is seen to drain."""
        call = self._call(call_id)
        position = self.position(call_id)
        return self.drain_view(call.group, call.priority, position).wait(position)

    def drain_view(self, group: str, priority: Priority = Priority.NORMAL, position: int = 0) -> DrainView:
        """How `group`'s queue drains for a caller of class `priority`: idle agents, the rate agents take the head
        (as seen; staffed agents / mean handle time until seen), the hang-up hazard per caller ahead (live callers'
        hazard times their share of the queue: callbacks do not hang up) and the arrival rates of the classes that
        overtake this one. For a caller at `position` few places behind the idle agents of a small group, also when
        each staffed agent is expected to be free, from how long its call has lasted."""
        if group not in self.groups:
            raise QueueError(f"unknown agent group {group!r}")
        staffed = self._staffed[group]
        if not staffed:
            return DrainView(0, 0.0)
        rates = self.rates[group]
        credit = self.policy.age_credit_s
        mine = credit.get(priority, 0.0)
        overtakers = tuple((rates.arrivals_per_s(p), credit.get(p, 0.0) - mine) for p in Priority
                           if credit.get(p, 0.0) > mine and rates.arrivals_per_s(p) > 0)
        waiting = len(self._keys[group])
        hazard = rates.abandon_hazard * self._live[group] / waiting if waiting else rates.abandon_hazard
        handle = max(self._handle[group].mean, MIN_HANDLE_S)  # calls that ended at once must not mean "no time"
        idle = self._idle[group]
        free = (departures(self._handle[group], self._members[group].values(), self._started, self.groups,
                           self.clock()) if 0 < position - idle <= FEW_AHEAD and staffed <= FEW_AGENTS else ())
        return DrainView(idle, rates.served_per_s(staffed, handle), hazard, overtakers, free)

    def wait_at(self, group: str, position: int) -> float:
        """Projected seconds until position `position` of `group` is served, from staffing and handle times alone
        (agents free when their calls reach the mean handle time; nobody ahead leaves): for comparison."""
        now, handle = self.clock(), self._handle[group].mean
        return projected_wait(now, staffing_free_at(self._members[group].values(), self._started, now, handle),
                              position, handle)

    def length(self, group: str | None = None, priority: Priority | None = None) -> int:
        calls = self._calls.values() if group is None else (c for c in self._calls.values() if c.group == group)
        return sum(1 for c in calls if priority is None or c.priority == priority)

    def oldest_wait(self, now: float | None = None) -> float:
        now = self.clock() if now is None else now
        return max((now - c.entered for c in self._calls.values()), default=0.0)

    def queued(self) -> list[QueuedCall]:
        """Queued calls in service order per group."""
        return [self._calls[self._by_key[k]] for g in self._keys for k in self._keys[g]]

    # -- time -------------------------------------------------------------------------------------------------
    def tick(self) -> list[QueueEvent]:
        """End presumed transferred calls and due wrap-ups, connect free agents to the best waiting calls and
        emit due announcements."""
        now = self.clock()
        self._advance()
        for aid, until in list(self._unseen.items()):
            if now >= until:
                log.info("agent %s: the transferred call is presumed ended; no one reported it", aid)
                self.call_ended(aid, observed=False)
        self._end_wrap_ups(now)
        events = self._assign(now)
        self._announcements(now, events)
        return events

    def _place(self, call_id: str, group: str, priority: Priority, entered: float, ticket: str,
               callback: bool) -> int:
        """The new call's place in arrival order (the tie-break of equal ranks)."""
        self._seq += 1
        return self._seq

    def _end_wrap_ups(self, now: float) -> None:
        for aid in list(self._wrapping):
            agent = self.agents[aid]
            if now >= agent.wrap_up_until:
                self._set(agent, AgentState.AVAILABLE)

    def _assign(self, now: float) -> list[QueueEvent]:
        """Give free agents (the longest free first) the best waiting call of their groups."""
        events: list[QueueEvent] = []
        waiting = bool(self._calls)
        for agent in sorted((self.agents[a] for a in self._available), key=lambda a: (a.since, a.agent_id)):
            if not waiting:
                break
            best: tuple[float, int] | None = None
            for g in agent.groups:
                keys = self._keys[g]
                if keys and (best is None or keys[0] < best):
                    best = keys[0]
            if best is None:
                continue
            call = self._calls[self._by_key[best]]
            self._remove(call)
            events.append(self._hand(call, agent, now))
            waiting = bool(self._calls)
        return events

    def _hand(self, call: QueuedCall, agent: Agent, now: float, count: bool = True) -> Connect:
        """The call (out of the queue) goes to the agent: on a call, counted (a live caller, unless not `count`),
        and the Connect to act on."""
        if agent.since > call.entered:  # an agent came free while the call waited: the head moved
            self.rates[call.group].served()
        self._held_calls[call.call_id] = call
        agent.call_id = call.call_id
        self._set(agent, AgentState.ON_CALL)
        self._started[agent.agent_id] = now
        waited = now - call.entered
        if count and not call.callback:
            self._count_answer(call, waited)
        return Connect(call.call_id, agent.agent_id, agent.uri, waited, call.callback, call.ticket)

    def _announcements(self, now: float, events: list[QueueEvent]) -> None:
        due = self._announce_due
        while due and due[0][0] <= now:
            _, seq, call_id = heapq.heappop(due)
            due_call = self._calls.get(call_id)
            if due_call is None or due_call.seq != seq or due_call.callback:
                continue
            call = due_call
            call.next_announce = now + self.policy.announce_every_s
            heapq.heappush(due, (call.next_announce, seq, call_id))
            wait = self.expected_wait(call.call_id)
            events.append(self._announce(call, wait))
            if not call.offered and wait > self.policy.offer_callback_over_s:
                call.offered = True
                events.append(OfferCallback(call.call_id, wait, "threshold"))

    def connected(self, call_id: str) -> QueuedCall:
        """Forget the bookkeeping of a call handed to an agent (after its Connect was acted on)."""
        try:
            return self._held_calls.pop(call_id)
        except KeyError:
            raise UnknownCall(f"no call {call_id} being connected") from None

    # -- internals --------------------------------------------------------------------------------------------
    def _count_answer(self, call: QueuedCall, waited: float) -> None:
        st = self.stats
        st.answered += 1
        for s in self.policy.service_levels_s:
            if waited <= s:
                st.answered_within[s] += 1
        told = call.estimate_at_entry
        if math.isfinite(told):
            st.abs_errors_s.append(abs(waited - told))
            st.estimate_pairs.append((told, waited))
            if max(told, waited) >= ERROR_FLOOR_S:
                st.estimate_errors.append(relative_error(told, waited))
        now = self.clock()
        for at, later in zip(call.announced[1:], call.announced_waits[1:]):
            if math.isfinite(later):
                st.reestimate_pairs.append((later, now - at))

    def _arrived(self, group: str, priority: Priority) -> None:
        """A live caller joined `group`'s queue (a node of a centre counts the other nodes' callers too)."""
        self.rates[group].arrived(priority)

    def _hung_up(self, group: str, priority: Priority) -> None:
        """A live caller of class `priority` waiting in `group` hung up."""
        self.rates[group].abandoned()

    def _advance(self) -> None:
        now = self.clock()
        for g, rates in self.rates.items():
            rates.advance(now, len(self._keys[g]), self._live[g], self._idle[g], self._staffed[g])

    def _announce(self, call: QueuedCall, wait: float) -> Announce:
        call.announced.append(self.clock())
        call.announced_waits.append(wait)
        return Announce(call.call_id, self.position(call.call_id), wait, spoken_minutes(wait))

    def _key(self, call: QueuedCall) -> tuple[float, int]:
        return (call.entered - self.policy.age_credit_s.get(call.priority, 0.0), call.seq)

    def _insert(self, call: QueuedCall) -> None:
        key = self._key(call)
        bisect.insort(self._keys[call.group], key)
        self._by_key[key] = call.call_id
        self._calls[call.call_id] = call
        self._live[call.group] += not call.callback

    def _remove(self, call: QueuedCall) -> None:
        key = self._key(call)
        keys = self._keys[call.group]
        del keys[bisect.bisect_left(keys, key)]
        del self._by_key[key]
        del self._calls[call.call_id]
        self._live[call.group] -= not call.callback

    def _call(self, call_id: str) -> QueuedCall:
        try:
            return self._calls[call_id]
        except KeyError:
            raise UnknownCall(f"no queued call {call_id}") from None

    def _agent(self, agent_id: str) -> Agent:
        try:
            return self.agents[agent_id]
        except KeyError:
            raise UnknownAgent(f"no agent {agent_id}") from None

