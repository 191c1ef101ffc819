"""The centre's queue in PostgreSQL, shared by every node: queued callers and the callbacks keeping their places,
operators' live states, which node holds which call, node heartbeats.

Every operation is one short transaction. Giving free operators to the best waiting callers (`assign`) locks the
free operators and the calls it picks with `FOR UPDATE SKIP LOCKED`: two nodes assigning at once never get the same
operator nor the same call. A node that stops beating (`lapse_s`) is lost: any node's `reap` takes its callers out
of the queue (counted as lost), gives back the operators it held and drops the callbacks it was connecting (their
callback lease brings them back). A call given an operator NOTIFYs `ivr_queue` with the node that must put it
through (a trigger of the schema).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from ivr.queue.model import AgentState, QueueError

__all__ = ["Centre", "CentreCall", "CentreAgent", "CentreNode", "Assignment", "Snapshot", "migrate", "CHANNEL",
           "VERSION_TABLE"]

log = logging.getLogger(__name__)

CHANNEL = "ivr_queue"
VERSION_TABLE = "queue_alembic_version"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
WAITING, CONNECTING = "waiting", "connecting"
UP, LOST, STOPPED = "up", "lost", "stopped"

metadata = sa.MetaData()
calls = sa.Table(
    "centre_calls", metadata,
    sa.Column("call_id", sa.String(128), primary_key=True),
    sa.Column("seq", sa.BigInteger, sa.Identity()),
    sa.Column("node", sa.String(64)),
    sa.Column("grp", sa.String(64)),
    sa.Column("priority", sa.Integer),
    sa.Column("entered", sa.Float),
    sa.Column("rank", sa.Float),
    sa.Column("ticket", sa.String(64)),
    sa.Column("callback", sa.Boolean),
    sa.Column("status", sa.String(16)),
    sa.Column("agent_id", sa.String(64)),
    sa.Column("assigned_at", sa.Float),
)
agents = sa.Table(
    "centre_agents", metadata,
    sa.Column("agent_id", sa.String(64), primary_key=True),
    sa.Column("uri", sa.String(256)),
    sa.Column("groups", sa.String(512)),
    sa.Column("state", sa.String(16)),
    sa.Column("since", sa.Float),
    sa.Column("wrap_up_until", sa.Float),
    sa.Column("call_id", sa.String(128)),
    sa.Column("node", sa.String(64)),
    sa.Column("calls", sa.BigInteger),
)
nodes = sa.Table(
    "centre_nodes", metadata,
    sa.Column("node", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(16)),
    sa.Column("started", sa.Float),
    sa.Column("heartbeat", sa.Float),
    sa.Column("calls", sa.Integer),
    sa.Column("queued", sa.Integer),
    sa.Column("lost_callers", sa.Integer),
    sa.Column("console", sa.String(256)),
    sa.Column("live", sa.Text),  # JSON: its calls in progress (call_id, caller, started, state, elderly, urgent)
)
tallies = sa.Table(
    "centre_tallies", metadata,
    sa.Column("grp", sa.String(64), primary_key=True),
    sa.Column("priority", sa.Integer, primary_key=True),
    sa.Column("arrived", sa.BigInteger),
    sa.Column("abandoned", sa.BigInteger),
)


def migrate(engine: sa.Engine) -> None:
    """Bring the queue database to the newest schema (Alembic, version table `queue_alembic_version`)."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    if engine.dialect.name != "postgresql":
        raise QueueError(f"the centre's queue needs PostgreSQL, not {engine.dialect.name}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(15015)"))  # nodes starting together migrate once
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        if context.get_current_revision() == head:
            return
        cfg.attributes.update(connection=conn, version_table=VERSION_TABLE)
        command.upgrade(cfg, "head")
    log.info("queue database upgraded to %s", head)


@dataclass(frozen=True)
class CentreCall:
    """A caller waiting in the centre's queue (on `node`), or a callback keeping its place (`node` None)."""
    call_id: str
    seq: int
    node: str | None
    group: str
    priority: int
    entered: float
    ticket: str
    callback: bool
    status: str
    agent_id: str | None
    assigned_at: float | None = None  # when it was given its operator (one assignment from another)


@dataclass(frozen=True)
class CentreAgent:
    agent_id: str
    state: AgentState
    since: float
    wrap_up_until: float
    call_id: str | None
    node: str | None


@dataclass(frozen=True)
class CentreNode:
    node: str
    state: str
    started: float
    heartbeat: float
    calls: int
    queued: int
    lost_callers: int
    console: str


@dataclass(frozen=True)
class Snapshot:
    agents: dict[str, CentreAgent]
    waiting: list[CentreCall]
    mine: list[CentreCall]  # given an operator, to be put through by this node
    tallies: dict[tuple[str, int], tuple[int, int]]  # (group, priority) -> live callers (arrived, hung up) so far


@dataclass(frozen=True)
class Assignment:
    call_id: str
    agent_id: str
    node: str


class Centre:
    """One node's handle on the centre's queue database. `engine` must be PostgreSQL, migrated (`migrate`)."""

    def __init__(self, engine: sa.Engine, node: str) -> None:
        self.engine, self.node = engine, node

    @classmethod
    def open(cls, url: str, node: str) -> Centre:
        """The centre's database at `url` (PostgreSQL), migrated; connections checked before use, so a restarted
        server is reconnected to."""
        engine = sa.create_engine(url, pool_pre_ping=True)
        migrate(engine)
        return cls(engine, node)

    # -- calls ------------------------------------------------------------------------------------------------
    def add_call(self, call_id: str, group: str, priority: int, entered: float, rank: float, ticket: str,
                 callback: bool) -> int:
        """Queue a call (a live caller on this node; a callback belongs to no node); returns its place in the
        centre's arrival order. A callback already queued (by another node) keeps its row."""
        row = pg_insert(calls).values(call_id=call_id, node=None if callback else self.node, grp=group,
                                      priority=priority, entered=entered, rank=rank, ticket=ticket,
                                      callback=callback, status=WAITING)
        with self.engine.begin() as conn:
            seq = conn.execute(row.on_conflict_do_nothing().returning(calls.c.seq)).scalar()
            if seq is None:
                if not callback:
                    raise QueueError(f"call {call_id} is already queued")
                seq = conn.execute(sa.select(calls.c.seq).where(calls.c.call_id == call_id)).scalar_one()
            elif not callback:
                self._tally(conn, group, priority, "arrived")
        return int(seq)

    def drop_call(self, call_id: str) -> bool:
        """Take a call out of the queue (booked, connected, cancelled)."""
        with self.engine.begin() as conn:
            return conn.execute(calls.delete().where(calls.c.call_id == call_id)).rowcount == 1

    def abandon_call(self, call_id: str) -> bool:
        """The caller hung up while waiting: out of the queue (not once given an operator), counted in the centre's
        hang-ups of its group and class."""
        with self.engine.begin() as conn:
            row = conn.execute(calls.delete().where((calls.c.call_id == call_id) & (calls.c.status == WAITING))
                               .returning(calls.c.grp, calls.c.priority, calls.c.callback)).first()
            if row is not None and not row.callback:
                self._tally(conn, row.grp, row.priority, "abandoned")
        return row is not None

    @staticmethod
    def _tally(conn: sa.Connection, group: str, priority: int, what: str) -> None:
        row = pg_insert(tallies).values(grp=group, priority=priority, arrived=int(what == "arrived"),
                                        abandoned=int(what == "abandoned"))
        conn.execute(row.on_conflict_do_update(index_elements=[tallies.c.grp, tallies.c.priority],
                                               set_={what: tallies.c[what] + 1}))

    def back_to_waiting(self, call_id: str) -> None:
        """The operator given this call did not answer: the call waits again at its place."""
        with self.engine.begin() as conn:
            conn.execute(calls.update().where(calls.c.call_id == call_id)
                         .values(status=WAITING, agent_id=None, assigned_at=None))

    def snapshot(self) -> Snapshot:
        """In one read: every operator, the centre's queue (waiting calls in arrival order) and the calls this node
        must put through (given an operator: its callers, the callbacks it dials), and the centre's tallies of
        arrivals and hang-ups."""
        with self.engine.connect() as conn:
            return Snapshot(self._agents(conn), self._calls(conn, calls.c.status == WAITING),
                            self._calls(conn, self._mine()), self._tallies(conn))

    def tallies(self) -> dict[tuple[str, int], tuple[int, int]]:
        """The centre's live callers so far by (group, priority): (arrived, hung up while waiting)."""
        with self.engine.connect() as conn:
            return self._tallies(conn)

    @staticmethod
    def _tallies(conn: sa.Connection) -> dict[tuple[str, int], tuple[int, int]]:
        return {(r.grp, r.priority): (r.arrived, r.abandoned) for r in conn.execute(sa.select(tallies))}

    def _mine(self) -> sa.ColumnElement[bool]:
        return (calls.c.status == CONNECTING) & (calls.c.node == self.node)

    @staticmethod
    def _calls(conn: sa.Connection, where: sa.ColumnElement[bool]) -> list[CentreCall]:
        rows = conn.execute(sa.select(calls).where(where).order_by(calls.c.seq)).all()
        return [CentreCall(r.call_id, r.seq, r.node, r.grp, r.priority, r.entered, r.ticket, r.callback, r.status,
                           r.agent_id, r.assigned_at) for r in rows]

    # -- operators --------------------------------------------------------------------------------------------
    def add_agent(self, agent_id: str, uri: str, groups: Iterable[str], now: float) -> None:
        """Make sure the operator has a row (signed out when new); its URI and groups follow the settings."""
        joined = ",".join(groups)
        row = pg_insert(agents).values(agent_id=agent_id, uri=uri, groups=joined, state=AgentState.SIGNED_OUT.value,
                                       since=now, wrap_up_until=0.0, calls=0)
        with self.engine.begin() as conn:
            conn.execute(row.on_conflict_do_update(index_elements=[agents.c.agent_id],
                                                   set_={"uri": uri, "groups": joined},
                                                   where=(agents.c.uri != uri) | (agents.c.groups != joined)))

    def set_agent(self, agent_id: str, state: AgentState, now: float, expect: AgentState | None,
                  wrap_up_until: float = 0.0) -> bool:
        """Change an operator's state if it is still `expect` (an operator on a call only by the node holding the
        call; `expect` None: any state but on a call). False when someone changed it first."""
        where = agents.c.agent_id == agent_id
        if expect is None:
            where &= agents.c.state != AgentState.ON_CALL.value
        else:
            where &= agents.c.state == expect.value
            if expect == AgentState.ON_CALL:
                where &= agents.c.node == self.node
        values: dict[str, object] = {"state": state.value, "since": now, "wrap_up_until": wrap_up_until}
        if state != AgentState.ON_CALL:
            values.update(call_id=None, node=None)
        with self.engine.begin() as conn:
            return conn.execute(agents.update().where(where).values(**values)).rowcount == 1

    def agents(self) -> dict[str, CentreAgent]:
        with self.engine.connect() as conn:
            return self._agents(conn)

    @staticmethod
    def _agents(conn: sa.Connection) -> dict[str, CentreAgent]:
        rows = conn.execute(sa.select(agents)).all()
        return {r.agent_id: CentreAgent(r.agent_id, AgentState(r.state), r.since, r.wrap_up_until, r.call_id, r.node)
                for r in rows}

    def end_wrap_ups(self, now: float) -> int:
        """Operators whose wrap-up is over are available (any node may do it, once)."""
        with self.engine.begin() as conn:
            return conn.execute(agents.update().where((agents.c.state == AgentState.WRAP_UP.value)
                                                      & (agents.c.wrap_up_until > 0)
                                                      & (agents.c.wrap_up_until <= now))
                                .values(state=AgentState.AVAILABLE.value, since=now, wrap_up_until=0.0)).rowcount

    def assign(self, now: float) -> tuple[list[Assignment], list[CentreCall]]:
        """Give every free operator the best waiting call of its groups (rank, then arrival), in one transaction:
        the operators and calls it takes are locked (SKIP LOCKED), so no other node can give them again. Returns
        the assignments made and, read in the same transaction, the calls this node must put through."""
        done: list[Assignment] = []
        with self.engine.begin() as conn:
            free = conn.execute(sa.select(agents.c.agent_id, agents.c.groups)
                                .where(agents.c.state == AgentState.AVAILABLE.value)
                                .order_by(agents.c.since, agents.c.agent_id)
                                .with_for_update(skip_locked=True)).all()
            for agent_id, groups in free:  # the calls taken so far are no longer waiting, in this transaction
                best = conn.execute(sa.select(calls.c.call_id, calls.c.node).where(
                    (calls.c.status == WAITING) & calls.c.grp.in_(groups.split(",")))
                    .order_by(calls.c.rank, calls.c.seq).limit(1).with_for_update(skip_locked=True)).first()
                if best is None:
                    continue
                holder = best.node or self.node  # a callback is dialled by the node that assigned it
                conn.execute(calls.update().where(calls.c.call_id == best.call_id).values(
                    status=CONNECTING, agent_id=agent_id, node=holder, assigned_at=now))
                conn.execute(agents.update().where(agents.c.agent_id == agent_id).values(
                    state=AgentState.ON_CALL.value, since=now, call_id=best.call_id, node=holder,
                    calls=agents.c.calls + 1))
                done.append(Assignment(best.call_id, agent_id, holder))
            mine = self._calls(conn, self._mine())
        return done, mine

    # -- nodes ------------------------------------------------------------------------------------------------
    def start(self, now: float, console: str = "") -> int:
        """This node (re)starts: what its previous run left (callers, operators held, callbacks it was connecting)
        is let go now rather than when its heartbeat would lapse. Returns the callers taken out."""
        with self.engine.begin() as conn:
            lost = self._let_go(conn, self.node, now)
            row = pg_insert(nodes).values(node=self.node, state=UP, started=now, heartbeat=now, calls=0, queued=0,
                                          lost_callers=0, console=console)
            conn.execute(row.on_conflict_do_update(index_elements=[nodes.c.node], set_={
                "state": UP, "started": now, "heartbeat": now, "calls": 0, "queued": 0, "console": console,
                "lost_callers": nodes.c.lost_callers + lost}))
        return lost

    def beat(self, now: float, calls_now: int, queued: int, live: list[dict[str, Any]] | None = None) -> str:
        """The heartbeat, with this node's load and its calls in progress (`live`, for every node's console);
        returns the state the centre had for it ("lost": it was given up while it could not beat, and its callers
        were taken out of the queue)."""
        with self.engine.begin() as conn:
            before = conn.execute(sa.select(nodes.c.state).where(nodes.c.node == self.node)
                                  .with_for_update()).scalar()
            conn.execute(nodes.update().where(nodes.c.node == self.node).values(
                state=UP, heartbeat=now, calls=calls_now, queued=queued, live=json.dumps(live or [])))
        return before or LOST

    def stop(self, now: float) -> None:
        """This node stops cleanly: marked stopped, nothing left behind."""
        with self.engine.begin() as conn:
            self._let_go(conn, self.node, now)
            conn.execute(nodes.update().where(nodes.c.node == self.node).values(state=STOPPED, heartbeat=now,
                                                                                live="[]"))

    def reap(self, now: float, lapse_s: float) -> dict[str, int]:
        """Nodes whose heartbeat is older than `lapse_s` are lost: their callers leave the queue (counted), the
        operators they held are available, the callbacks they were connecting wait for their lease to run out.
        Returns {node: callers taken out}."""
        with self.engine.begin() as conn:
            lapsed = conn.execute(sa.select(nodes.c.node).where((nodes.c.state == UP)
                                                                & (nodes.c.heartbeat < now - lapse_s))
                                  .with_for_update(skip_locked=True)).scalars().all()
            out = {}
            for node in lapsed:
                lost = self._let_go(conn, node, now)
                conn.execute(nodes.update().where(nodes.c.node == node).values(
                    state=LOST, queued=0, calls=0, live="[]", lost_callers=nodes.c.lost_callers + lost))
                out[node] = lost
        for node, lost in out.items():
            log.warning("node %s stopped beating: %d of its callers left the queue, its operators are free", node,
                        lost)
        return out

    def nodes(self) -> list[CentreNode]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(nodes).order_by(nodes.c.node)).all()
        return [CentreNode(r.node, r.state, r.started, r.heartbeat, r.calls, r.queued, r.lost_callers, r.console)
                for r in rows]

    def live_calls(self) -> dict[str, list[dict[str, Any]]]:
        """Every node's calls in progress as its last heartbeat told them, by node (nodes that are up)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(nodes.c.node, nodes.c.live).where(nodes.c.state == UP)).all()
        return {r.node: json.loads(r.live or "[]") for r in rows}

    def view(self, now: float) -> dict[str, Any]:
        """The whole centre now, as plain data (for `ivr queue status`, `ivr cluster status` and /metrics): every
        node with its heartbeat's age and load, the centre's queue in order, every operator."""
        with self.engine.connect() as conn:
            node_rows = conn.execute(sa.select(nodes).order_by(nodes.c.node)).all()
            call_rows = conn.execute(sa.select(calls).order_by(calls.c.rank, calls.c.seq)).all()
            agent_rows = conn.execute(sa.select(agents).order_by(agents.c.agent_id)).all()
        return {
            "time": now,
            "nodes": [{"node": r.node, "state": r.state, "heartbeat_age_s": round(now - r.heartbeat, 3),
                       "started": r.started, "calls": r.calls, "queued": r.queued, "lost_callers": r.lost_callers,
                       "console": r.console} for r in node_rows],
            "queue": [{"call_id": r.call_id, "node": r.node, "group": r.grp, "priority": r.priority,
                       "waited_s": round(now - r.entered, 3), "callback": r.callback, "status": r.status,
                       "agent": r.agent_id} for r in call_rows],
            "agents": {r.agent_id: {"state": r.state, "since": r.since, "node": r.node, "call_id": r.call_id,
                                    "calls": r.calls, "groups": r.groups.split(",")} for r in agent_rows},
        }

    @staticmethod
    def _let_go(conn: sa.Connection, node: str, now: float) -> int:
        lost = conn.execute(calls.delete().where((calls.c.node == node) & ~calls.c.callback)).rowcount
        conn.execute(calls.delete().where((calls.c.node == node) & calls.c.callback))  # their leases bring them back
        conn.execute(agents.update().where((agents.c.node == node) & (agents.c.state == AgentState.ON_CALL.value))
                     .values(state=AgentState.AVAILABLE.value, since=now, call_id=None, node=None))
        return int(lost)
