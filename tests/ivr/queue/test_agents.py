"""AgentDirectory: operators' states kept in SQLite, audited, and synced both ways with a real CallQueue."""
from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.config import AgentConfig, AgentGroup
from ivr.queue import AgentState, CallQueue, Connect, QueueError, UnknownAgent
from ivr.queue.directory import AgentDirectory, AgentStateError, parse_state


@pytest.fixture(autouse=True)
def _collect_engines() -> Iterator[None]:
    """Close the SQLite files of the directories a test made now, not during a later test that counts fds."""
    yield
    gc.collect()


AGENTS = (AgentConfig("op1", "王芳", "sip:op1@127.0.0.1:5071", ("general", "elderly")),
          AgentConfig("op2", "李强", "sip:op2@127.0.0.1:5072", ("general",)))
A, ON, WRAP, OUT = AgentState.AVAILABLE, AgentState.ON_CALL, AgentState.WRAP_UP, AgentState.SIGNED_OUT


class Clock:
    def __init__(self) -> None:
        self.t = 1_780_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'callbacks.db'}"


def server(url: str, clock: Clock) -> tuple[AgentDirectory, CallQueue]:
    """What `ivr serve` holds: a directory and a queue populated from it."""
    d = AgentDirectory(url, AGENTS, clock)
    q = CallQueue([AgentGroup("general", 10.0), AgentGroup("elderly", 30.0)], clock)
    d.populate(q)
    return d, q


def states(d: AgentDirectory) -> dict[str, AgentState]:
    return {s.agent_id: s.state for s in d.statuses()}


def test_new_operators_start_available_and_states_survive_a_restart(url: str, clock: Clock) -> None:
    d = AgentDirectory(url, AGENTS, clock)
    first = d.statuses()
    assert [(s.agent_id, s.name, s.groups, s.state, s.changed_by) for s in first] == [
        ("op1", "王芳", ("general", "elderly"), A, "config"), ("op2", "李强", ("general",), A, "config")]
    clock.t += 5
    d.set_state("op2", "signed-out", "supervisor")
    again = AgentDirectory(url, AGENTS, clock)
    assert states(again) == {"op1": A, "op2": OUT}
    assert again.get("op2").since == clock.t and again.get("op2").changed_by == "supervisor"


def test_changes_are_audited(url: str, clock: Clock) -> None:
    d = AgentDirectory(url, AGENTS, clock)
    d.set_state("op1", "signed_out", "alice")
    clock.t += 60
    entry = d.set_state("op1", AgentState.WRAP_UP, "bob")
    assert (entry.before, entry.after, entry.user, entry.at) == (OUT, WRAP, "bob", clock.t)
    assert [(e.user, e.before, e.after) for e in d.history("op1")] == [("bob", OUT, WRAP), ("alice", A, OUT)]
    assert d.history("op2") == []


def test_unknown_agent_and_states_are_refused(url: str, clock: Clock) -> None:
    d = AgentDirectory(url, AGENTS, clock)
    with pytest.raises(UnknownAgent) as info:
        d.set_state("op9", "available", "x")
    assert str(info.value) == "no agent 'op9' (agents: op1, op2)"
    with pytest.raises(AgentStateError) as err:
        d.set_state("op1", "busy", "x")
    assert str(err.value) == "unknown state 'busy': use available, signed-out or wrap-up"
    with pytest.raises(AgentStateError) as err:
        parse_state("on-call")
    assert str(err.value) == "state on_call is set by the queue, not by hand"
    assert isinstance(err.value, QueueError) and d.history() == []


def test_outside_changes_reach_the_queue_and_the_queues_come_back(url: str, clock: Clock) -> None:
    d, q = server(url, clock)
    cli = AgentDirectory(url, AGENTS, clock)  # another process on the same database
    cli.set_state("op2", "signed-out", "supervisor")
    d.sync(q)
    assert q.agents["op2"].state == OUT
    q.enqueue("c1", "general")
    [connect] = [e for e in q.tick() if isinstance(e, Connect)]
    assert connect.agent_id == "op1"
    d.sync(q)
    op1 = cli.get("op1")
    assert (op1.state, op1.changed_by) == (ON, "queue")
    clock.t += 100
    q.connected("c1")
    q.call_ended("op1")
    d.sync(q)
    assert cli.get("op1").state == WRAP
    clock.t += 30  # op1 serves the elderly desk too: the longer wrap-up
    q.tick()
    d.sync(q)
    assert states(cli) == {"op1": A, "op2": OUT}
    assert [(e.agent_id, e.user) for e in cli.history()] == [("op2", "supervisor")]  # the call cycle is not audited


def test_sign_out_during_a_call_waits_for_its_end(url: str, clock: Clock) -> None:
    d, q = server(url, clock)
    q.enqueue("c1", "elderly")
    q.tick()
    d.sync(q)
    d.set_state("op1", "signed-out", "op1")  # between two ticks, from the CLI
    d.sync(q)
    assert q.agents["op1"].state == ON and d.get("op1").state == OUT  # asked for; the call goes on
    q.connected("c1")
    q.call_ended("op1")
    d.sync(q)
    assert q.agents["op1"].state == OUT and d.get("op1").state == OUT
    q.enqueue("c2", "elderly")
    assert not [e for e in q.tick() if isinstance(e, Connect)]


def test_available_asked_during_a_call_shows_the_call(url: str, clock: Clock) -> None:
    d, q = server(url, clock)
    q.enqueue("c1", "general")
    q.tick()
    d.set_state("op1", "available", "op1")
    d.sync(q)
    assert q.agents["op1"].state == ON and d.get("op1").state == ON


def test_the_state_set_after_a_referred_call_ends_that_call(url: str, clock: Clock) -> None:
    d, q = server(url, clock)
    for n, (wanted, after) in enumerate([("available", A), ("wrap-up", WRAP), ("signed-out", OUT)]):
        q.set_state("op1", A)
        q.enqueue(f"c{n}", "elderly")
        q.tick()
        q.connected(f"c{n}")
        q.handed_off("op1", busy_s=600)  # transferred by REFER: only the operator sees the call end
        d.sync(q)
        assert d.get("op1").state == ON
        clock.t += 100
        d.set_state("op1", wanted, "op1")
        d.sync(q)
        assert q.agents["op1"].state == after and not q.out_of_sight("op1")
        assert d.get("op1").state == after


def test_wrap_up_by_hand_pauses_for_the_desks_wrap_up_time(url: str, clock: Clock) -> None:
    d, q = server(url, clock)
    d.set_state("op2", "signed-out", "x")
    d.set_state("op1", "wrap-up", "op1")
    d.sync(q)
    assert d.get("op1").state == WRAP
    q.enqueue("c1", "general")
    assert not [e for e in q.tick() if isinstance(e, Connect)]
    clock.t += 29
    d.sync(q)
    assert not [e for e in q.tick() if isinstance(e, Connect)]
    clock.t += 1
    d.sync(q)
    assert d.get("op1").state == A
    assert [e.agent_id for e in q.tick() if isinstance(e, Connect)] == ["op1"]


def test_queue_sign_out_of_a_missed_operator_is_audited(url: str, clock: Clock) -> None:
    d, q = server(url, clock)
    q.enqueue("c1", "general")
    q.tick()
    d.sync(q)
    q.connect_failed("c1", "op1")
    d.sync(q)
    [entry] = d.history("op1")
    assert (entry.user, entry.before, entry.after) == ("queue", ON, OUT)


def test_a_change_made_while_the_queue_writes_back_is_not_lost(url: str, clock: Clock) -> None:
    d, q = server(url, clock)
    q.enqueue("c1", "general")
    q.tick()  # op1 on a call, not yet written back ...
    AgentDirectory(url, AGENTS, clock).set_state("op1", "signed-out", "supervisor")  # ... when this lands
    d.sync(q)
    assert d.get("op1").state == OUT and q.agents["op1"].state == ON
    q.connected("c1")
    q.call_ended("op1")
    d.sync(q)
    assert q.agents["op1"].state == OUT


def test_states_left_by_a_stopped_server_read_as_available(url: str, clock: Clock) -> None:
    d, q = server(url, clock)
    q.enqueue("c1", "general")
    q.tick()
    d.sync(q)
    assert d.get("op1").state == ON
    d2, q2 = server(url, clock)  # the server was killed during the call
    assert q2.agents["op1"].state == A and d2.get("op1").state == A
    assert q2.agents["op2"].state == A


def test_a_reloaded_config_adds_removes_and_changes_operators(url: str, clock: Clock) -> None:
    d, q = server(url, clock)
    q.enqueue("c1", "general")
    q.tick()
    assert q.agents["op1"].state == ON  # op1 takes c1
    moved = AgentConfig("op1", "王芳", "sip:op1@10.0.0.9:5060", ("general",))
    op3 = AgentConfig("op3", "张伟", "sip:op3@127.0.0.1:5073", ("elderly",))
    assert d.reconfigure((moved, op3), q) == ["+op3", "-op2", "~op1"]
    assert set(q.agents) == {"op1", "op3"} and q.agents["op3"].state == A  # op2 was free: gone at once
    assert q.agents["op1"].uri == "sip:op1@127.0.0.1:5071"  # on a call: the change waits for its end
    assert [s.agent_id for s in d.statuses()] == ["op1", "op3"]
    q.connected("c1")
    q.call_ended("op1")
    d.sync(q)
    assert (q.agents["op1"].uri, q.agents["op1"].groups) == ("sip:op1@10.0.0.9:5060", ("general",))
    assert q.agents["op1"].state == A and d.get("op1").state == A
    q.enqueue("c2", "general")
    assert [e.agent_id for e in q.tick() if isinstance(e, Connect)] == ["op1"]
    assert d.reconfigure((moved, op3), q) == []


def test_a_removed_operator_signed_out_stays_signed_out_when_added_back(url: str, clock: Clock) -> None:
    d, q = server(url, clock)
    d.set_state("op2", "signed-out", "supervisor")
    d.sync(q)
    d.reconfigure(AGENTS[:1], q)
    assert set(q.agents) == {"op1"}
    d.reconfigure(AGENTS, q)
    assert q.agents["op2"].state == OUT and d.get("op2").state == OUT  # its durable state, not a fresh start
