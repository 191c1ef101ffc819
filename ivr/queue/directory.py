"""Operators' availability, durable in the callbacks database and kept in step with a running CallQueue.

An operator is available, on a call, in wrap-up or signed out. People (`ivr queue agent`, the console's API) set
available, signed out or wrap-up (a pause of the desk's wrap-up time, then available); the queue itself sets on a
call and wrap-up. A running server calls `AgentDirectory.sync(queue)` every tick: a state set from outside since its
last look is applied to the queue (signing out an operator on a call waits until the call ends), and the queue's
own changes are written back, so `ivr queue agents` shows what the server sees. Every change made by a person, and
every sign-out by the queue (an operator who did not answer), is audited: who, when, before, after. A call handed
to an operator by REFER goes on out of the queue's sight: the state the operator sets next ends it.

A configured operator seen for the first time starts available. States left by a server that stopped (on a call,
wrap-up) are read as available by the next one. Nodes sharing the centre's queue (`ivr.queue.shared`) all write
their queue's view back; what another node's queue wrote is not a person's request, and is not applied again.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ivr.config import AgentConfig, Settings
from ivr.queue.call_queue import CallQueue
from ivr.queue.callbacks import open_engine, queue_url
from ivr.queue.model import Agent, AgentState, QueueError, UnknownAgent

__all__ = ["AgentDirectory", "AgentStatus", "AgentAudit", "AgentStateError", "parse_state", "directory_for"]

log = logging.getLogger(__name__)

QUEUE_USER = "queue"  # who the queue's own changes are written by
SETTABLE = (AgentState.AVAILABLE, AgentState.SIGNED_OUT, AgentState.WRAP_UP)

metadata = sa.MetaData()
states = sa.Table(
    "queue_agent_states", metadata,
    sa.Column("agent_id", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("since", sa.Float, nullable=False),
    sa.Column("changed_by", sa.String(64), nullable=False),
    sa.Column("rev", sa.Integer, nullable=False),  # bumped by every write: tells a server what changed outside
)
audit = sa.Table(
    "queue_agent_audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("agent_id", sa.String(64), nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("user", sa.String(64), nullable=False),
    sa.Column("before", sa.String(16), nullable=False),
    sa.Column("after", sa.String(16), nullable=False),
)


class AgentStateError(QueueError):
    """A state that cannot be set by hand (unknown, or one only the queue sets)."""


@dataclass(frozen=True)
class AgentStatus:
    """A configured operator and their current state (`since`: seconds since the epoch)."""
    agent_id: str
    name: str
    uri: str
    groups: tuple[str, ...]
    state: AgentState
    since: float
    changed_by: str
    user: str = ""  # the console user who is this operator ("": none)


@dataclass(frozen=True)
class AgentAudit:
    """One change of an operator's state."""
    agent_id: str
    at: float
    user: str
    before: AgentState
    after: AgentState


@dataclass(frozen=True)
class _Row:
    state: AgentState
    since: float
    changed_by: str
    rev: int


def parse_state(text: str | AgentState) -> AgentState:
    """A state a person may set: available, signed-out or wrap-up (`_` or `-`)."""
    value = text.value if isinstance(text, AgentState) else text.strip().lower().replace("-", "_")
    try:
        state = AgentState(value)
    except ValueError:
        raise AgentStateError(f"unknown state {text!r}: use available, signed-out or wrap-up") from None
    if state not in SETTABLE:
        raise AgentStateError(f"state {state.value} is set by the queue, not by hand")
    return state


def directory_for(settings: Settings) -> AgentDirectory:
    """The settings' operators, their states kept in the queue's database (`callbacks.db` in the data folder, or the
    centre's `queue_database_url`)."""
    return AgentDirectory(queue_url(settings), settings.queue_agents)


class AgentDirectory:
    """The configured operators and their durable states. `url` is an SQLAlchemy URL (the callbacks database)."""

    def __init__(self, url: str, agents: Sequence[AgentConfig], clock: Callable[[], float] = time.time) -> None:
        self.agents = {a.agent_id: a for a in agents}
        self.clock = clock
        self._seen: dict[str, int] = {}  # agent id -> rev last applied to / written from the queue
        self._paused: dict[str, float] = {}  # agent id -> end of a wrap-up set by hand (the queue has them out)
        self._leaving: set[str] = set()  # removed or changed in a reloaded config: leave the queue after the call
        # in a centre: every operator's live state and since when, as the centre has it (one source for every
        # node's console, where each node's write-back of its own mirror may lag another's)
        self.live_states: Callable[[], Mapping[str, tuple[AgentState, float]]] | None = None
        self.engine = open_engine(url)
        metadata.create_all(self.engine)
        self._seed()

    def _seed(self) -> None:
        known = set(self._rows())
        now = self.clock()
        for aid in self.agents.keys() - known:
            try:
                with self.engine.begin() as conn:
                    conn.execute(states.insert().values(agent_id=aid, state=AgentState.AVAILABLE.value, since=now,
                                                        changed_by="config", rev=0))
            except IntegrityError:  # another process seeded it first
                pass

    # -- people ------------------------------------------------------------------------------------------------
    def statuses(self) -> list[AgentStatus]:
        """Every configured operator, in configuration order."""
        rows, live = self._rows(), self._live()
        return [self._status(a, rows[a.agent_id], live.get(a.agent_id)) for a in self.agents.values()]

    def get(self, agent_id: str) -> AgentStatus:
        return self._status(self._config(agent_id), self._rows()[agent_id], self._live().get(agent_id))

    def _live(self) -> Mapping[str, tuple[AgentState, float]]:
        return self.live_states() if self.live_states is not None else {}

    def set_state(self, agent_id: str, state: str | AgentState, user: str) -> AgentAudit:
        """Set an operator's state by hand (audited under `user`); a running server applies it at its next tick."""
        self._config(agent_id)
        after = parse_state(state)
        now = self.clock()
        with self.engine.begin() as conn:
            before = AgentState(conn.execute(sa.select(states.c.state).where(states.c.agent_id == agent_id))
                                .scalar_one())
            conn.execute(states.update().where(states.c.agent_id == agent_id).values(
                state=after.value, since=now, changed_by=user, rev=states.c.rev + 1))
            entry = AgentAudit(agent_id, now, user, before, after)
            self._audit(conn, entry)
        log.info("agent %s: %s -> %s by %s", agent_id, before.value, after.value, user)
        return entry

    def history(self, agent_id: str | None = None, limit: int = 100) -> list[AgentAudit]:
        """Audited changes, newest first (of one operator, or all)."""
        query = audit.select().order_by(audit.c.id.desc()).limit(limit)
        if agent_id is not None:
            self._config(agent_id)
            query = query.where(audit.c.agent_id == agent_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [AgentAudit(r.agent_id, r.at, r.user, AgentState(r.before), AgentState(r.after)) for r in rows]

    # -- the server --------------------------------------------------------------------------------------------
    def populate(self, queue: CallQueue) -> None:
        """Add the configured operators the queue does not have yet, in their durable states."""
        self._settle(queue)
        self.sync(queue)

    def reconfigure(self, agents: Sequence[AgentConfig], queue: CallQueue) -> list[str]:
        """Take a reloaded list of operators: new ones join the queue in their durable states (available when
        first seen); removed ones leave it and changed ones (URI, groups) join again, each once any call in progress
        has ended. Returns the changes, e.g. ["+op3", "-op2", "~op1"]."""
        old, new = self.agents, {a.agent_id: a for a in agents}
        changes = ([f"+{aid}" for aid in new if aid not in old] + [f"-{aid}" for aid in old if aid not in new]
                   + [f"~{aid}" for aid in new if aid in old and new[aid] != old[aid]])
        self._leaving |= {aid for aid in old if new.get(aid) != old[aid]}
        self.agents = new
        self._seed()
        self.populate(queue)
        return changes

    def _settle(self, queue: CallQueue) -> None:
        """Operators leaving leave the queue unless on a call; configured ones it lacks join, signed out until
        their durable state is applied."""
        for aid in list(self._leaving):
            agent = queue.agents.get(aid)
            if agent is not None and agent.state == AgentState.ON_CALL:
                continue
            if agent is not None:
                queue.remove_agent(aid)
            self._leaving.discard(aid)
            self._seen.pop(aid, None)
            self._paused.pop(aid, None)
        for a in self.agents.values():
            if a.agent_id not in queue.agents:
                queue.add_agent(a.agent_id, a.uri, a.groups, AgentState.SIGNED_OUT)

    def pausing(self) -> frozenset[str]:
        """Operators in a wrap-up set by hand: the queue has them signed out until it ends."""
        return frozenset(self._paused)

    def sync(self, queue: CallQueue) -> None:
        """Apply states set from outside to the queue, and write the queue's own changes back."""
        if self._leaving:
            self._settle(queue)
        now = self.clock()
        rows = self._rows()
        changed: list[tuple[str, _Row, AgentState]] = []
        for aid in self.agents:
            agent, row = queue.agents.get(aid), rows.get(aid)
            if agent is None or row is None:
                continue
            if row.rev != self._seen.get(aid) and row.changed_by == QUEUE_USER and aid in self._seen:
                self._seen[aid] = row.rev  # another node's queue wrote what the centre's queue already has
            elif row.rev != self._seen.get(aid):
                self._paused.pop(aid, None)
                if not self._apply(queue, agent, row.state, now):
                    continue  # a sign-out waits for the end of the call
                self._seen[aid] = row.rev
            until = self._paused.get(aid)
            if until is not None and now >= until:
                del self._paused[aid]
                queue.set_state(aid, AgentState.AVAILABLE)
            shown = AgentState.WRAP_UP if aid in self._paused else agent.state
            if shown != row.state:
                changed.append((aid, row, shown))
        if changed:
            self._write_back(changed, now)

    def _apply(self, queue: CallQueue, agent: Agent, wanted: AgentState, now: float) -> bool:
        aid = agent.agent_id
        if wanted == AgentState.ON_CALL:  # left by a server that stopped: that call is gone
            wanted = AgentState.AVAILABLE
        if agent.state == AgentState.ON_CALL:
            if not queue.out_of_sight(aid):
                return wanted != AgentState.SIGNED_OUT  # available or wrap-up: the queue wraps up after the call
            queue.call_ended(aid)  # the end of a call handed off by REFER, which only the operator sees
            if wanted == AgentState.WRAP_UP:
                return True  # the queue's own wrap-up has begun
        if wanted == AgentState.WRAP_UP:
            if agent.state != AgentState.SIGNED_OUT:
                queue.set_state(aid, AgentState.SIGNED_OUT)  # no calls until the pause ends
            self._paused[aid] = now + max(queue.groups[g].wrap_up_s for g in agent.groups)
        elif wanted != agent.state:
            queue.set_state(aid, wanted)
        return True

    def _write_back(self, changed: list[tuple[str, _Row, AgentState]], now: float) -> None:
        """The queue's own changes, in one transaction; a row someone changed meanwhile is left for the next tick."""
        written = []
        with self.engine.begin() as conn:
            for aid, row, state in changed:
                done = conn.execute(states.update().where((states.c.agent_id == aid) & (states.c.rev == row.rev))
                                    .values(state=state.value, since=now, changed_by=QUEUE_USER, rev=row.rev + 1))
                if done.rowcount != 1:
                    continue
                written.append((aid, row.rev + 1))
                if state == AgentState.SIGNED_OUT:
                    self._audit(conn, AgentAudit(aid, now, QUEUE_USER, row.state, state))
        self._seen.update(written)

    # -- internals ---------------------------------------------------------------------------------------------
    def _rows(self) -> dict[str, _Row]:
        with self.engine.connect() as conn:
            rows = conn.execute(states.select()).all()
        return {r.agent_id: _Row(AgentState(r.state), r.since, r.changed_by, r.rev) for r in rows}

    def _config(self, agent_id: str) -> AgentConfig:
        try:
            return self.agents[agent_id]
        except KeyError:
            known = ", ".join(self.agents) or "none configured"
            raise UnknownAgent(f"no agent {agent_id!r} (agents: {known})") from None

    @staticmethod
    def _status(a: AgentConfig, row: _Row, live: tuple[AgentState, float] | None = None) -> AgentStatus:
        """The operator's state: the centre's when there is one, save a wrap-up pause someone set (the queue has
        the operator signed out meanwhile)."""
        state, since = row.state, row.since
        if live is not None and not (live[0] == AgentState.SIGNED_OUT and row.state == AgentState.WRAP_UP):
            state, since = live
        return AgentStatus(a.agent_id, a.name, a.uri, a.groups, state, since, row.changed_by, a.user)

    @staticmethod
    def _audit(conn: sa.Connection, e: AgentAudit) -> None:
        conn.execute(audit.insert().values(agent_id=e.agent_id, at=e.at, user=e.user, before=e.before.value,
                                           after=e.after.value))
