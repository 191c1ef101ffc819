"""The centre's queue shared by several nodes in a real PostgreSQL: the order of callers across nodes, one operator
never given twice (three real processes racing), the nodes woken by NOTIFY, a lost node's callers and operators,
one view of the centre from any node (`ivr queue status`, `ivr cluster status`, the gauges)."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pgkit import PgCluster, fresh_database
from prometheus_client import generate_latest
from typer.testing import CliRunner

from ivr.cli import app as cli
from ivr.config import AgentConfig, AgentGroup
from ivr.queue import AgentState, Connect, Priority, Rejected
from ivr.queue.centre import Centre
from ivr.queue.directory import AgentDirectory
from ivr.queue.link import CentreLink
from ivr.queue.metrics import QueueMetrics
from ivr.queue.shared import SharedQueue
from ivr.queue.wakeup import Wakeup

HERE = Path(__file__).parent
GROUPS = [AgentGroup("general", wrap_up_s=10), AgentGroup("elderly", wrap_up_s=20)]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def url(pg: PgCluster) -> str:
    return fresh_database(pg)


def nodes(url: str, clock: Clock, names: str = "ABC", agents: int = 1, lapse_s: float = 600) -> dict[str, SharedQueue]:
    """Nodes sharing the centre, looking at it at every tick, with the same operators (signed out); a node is
    given up when it has not ticked for `lapse_s`."""
    out = {}
    for name in names:
        q = SharedQueue(GROUPS, clock, Centre.open(url, name), handle_prior_s=120, sync_every_s=0, lapse_s=lapse_s)
        for i in range(agents):
            q.add_agent(f"op{i}", f"sip:op{i}@127.0.0.1", ("general",), AgentState.SIGNED_OUT)
        out[name] = q
    return out


def tick_all(qs: dict[str, SharedQueue]) -> dict[str, list[str]]:
    """One tick of every node: the calls each was told to put through."""
    return {n: [e.call_id for e in q.tick() if isinstance(e, Connect)] for n, q in qs.items()}


def test_order_across_nodes_first_come_first_served_and_the_elderly_overtake(url: str) -> None:
    clock = Clock()
    qs = nodes(url, clock)
    qs["B"].enqueue("b-first", "general")
    clock.t += 5
    qs["A"].enqueue("a-later", "general")
    clock.t += 5
    qs["C"].enqueue("c-elderly", "general", Priority.ELDERLY)
    tick_all(qs)
    for q in qs.values():  # every node sees the centre's queue, not its own
        assert [c.call_id for c in q.queued()] == ["c-elderly", "b-first", "a-later"]
    assert qs["A"].position("a-later") == 3 and qs["B"].position("b-first") == 2
    qs["A"].set_state("op0", AgentState.AVAILABLE)  # signed in on A's console
    served = []
    for _ in range(3):
        got = tick_all(qs)
        assert sum(len(v) for v in got.values()) == 1, got  # one operator: one call at a time
        node, (call_id,) = next((n, v) for n, v in got.items() if v)
        assert call_id.startswith(node.lower())  # the node holding the caller puts it through
        served.append(call_id)
        qs[node].connected(call_id)
        clock.t += 30
        qs[node].call_ended("op0")
        assert tick_all(qs) == {"A": [], "B": [], "C": []}  # wrap-up
        clock.t += 10
    assert served == ["c-elderly", "b-first", "a-later"]
    assert all(q.length() == 0 for q in qs.values())


class OtherNode:
    """A node of the same centre in its own process (tally_proc.py), driven command by command."""

    def __init__(self, url: str, node: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "tally_proc.py"), url, node], text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def __call__(self, *commands: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        answer = ""
        for command in commands:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline().strip()
            assert answer, f"the other node died at {command!r}"
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def test_expected_waits_use_the_whole_centres_arrivals_and_hang_ups_counted_by_two_processes(url: str) -> None:
    clock = Clock()
    a = SharedQueue(GROUPS, clock, Centre.open(url, "A"), sync_every_s=0, lapse_s=600)
    a.add_agent("op0", "sip:op0@127.0.0.1", ("general",))
    b = OtherNode(url, "B")
    try:
        b("tick")  # B has started: what comes next is news to it
        a.enqueue("a0", "general")
        assert [e.call_id for e in a.tick() if isinstance(e, Connect)] == ["a0"]  # op0 busy from now on
        a.connected("a0")
        b("at 1000", *(f"enqueue b-elder{i} ELDERLY" for i in range(3)), "tick")
        clock.t = 1010
        a.enqueue("a1", "general")
        a.tick()
        assert [c.call_id for c in a.queued()] == ["b-elder0", "b-elder1", "b-elder2", "a1"]
        clock.t = 1030
        b("at 1030", "abandon b-elder0", "abandon b-elder1", "tick")  # hung up on B after 30 s
        a.tick()
        rates = a.rates["general"]
        # B's elderly callers overtake A's: 3 in A's 30 s; 2 hang-ups over A's 20 s of 4 live callers waiting
        assert rates.arrivals_per_s(Priority.ELDERLY) == pytest.approx(3 / 30, rel=0.02)
        assert rates.arrivals_per_s(Priority.NORMAL) == pytest.approx(2 / 30, rel=0.02)
        assert rates.abandon_hazard == pytest.approx(2 / 80, rel=0.02)
        assert a.drain_view("general", Priority.NORMAL).overtakers == (
            (rates.arrivals_per_s(Priority.ELDERLY), 300.0),)
        seen_by_b = json.loads(b("rates general"))  # and B counts A's callers
        assert seen_by_b["arrivals"]["NORMAL"] == pytest.approx(2 / 30, rel=0.02)
        assert seen_by_b["arrivals"]["ELDERLY"] == pytest.approx(3 / 30, rel=0.02)
        assert seen_by_b["hazard"] > 0
        assert b("quit") == "ok"
    finally:
        b.close()


class HeldLink(CentreLink):
    """The centre's database answering when the test says (`answer`), in order: as a slow database does."""

    def __init__(self) -> None:
        super().__init__(threaded=False)
        self.held: list[tuple[Any, Any]] = []

    def submit(self, job: Any, done: Any) -> None:
        self.held.append((job, done))

    def answer(self) -> None:
        held, self.held = self.held, []
        for job, done in held:
            super().submit(job, done)


def test_a_slow_centre_answering_with_a_call_already_put_through_does_not_hand_it_out_again(url: str) -> None:
    clock, link = Clock(), HeldLink()
    q = SharedQueue(GROUPS, clock, Centre.open(url, "A"), sync_every_s=0, link=link)
    q.add_agent("op0", "sip:op0@127.0.0.1", ("general",))
    q.enqueue("a0", "general")
    assert q.tick() == [] and q.position("a0") == 1  # queued here at once, the centre not asked yet
    link.answer()  # a0 written, then the sync that gives op0 to a0
    (connect,) = [e for e in q.tick() if isinstance(e, Connect)]  # (this tick asks the centre again)
    q.connected("a0")  # put through: its drop is written after that question
    link.answer()  # the answer lists a0 given to op0 still, then the drop lands
    clock.t += 1
    assert [e for e in q.tick() if isinstance(e, Connect)] == []  # handed out once
    link.answer()
    clock.t += 30
    q.call_ended("op0")
    link.answer()
    assert q.centre.agents()["op0"].state == AgentState.WRAP_UP  # the call's end reached the centre


def test_a_callback_keeps_its_place_across_nodes_and_is_dialled_by_the_node_that_assigns_it(url: str) -> None:
    clock = Clock()
    qs = nodes(url, clock, "AB")
    qs["A"].enqueue("a1", "general")
    clock.t += 1
    qs["B"].enqueue("b1", "general")
    qs["A"].to_callback("a1")  # booked: the caller hangs up, the callback keeps a1's place
    qs["A"].remove("a1")
    qs["A"].enqueue("cb-7", "general", callback=True, entered=1000.0)
    qs["B"].enqueue("cb-7", "general", callback=True, entered=1000.0)  # B restored it too: still one place
    tick_all(qs)
    assert [c.call_id for c in qs["B"].queued()] == ["cb-7", "b1"]
    qs["B"].set_state("op0", AgentState.AVAILABLE)
    got = {n: [c for c in calls] for n, calls in tick_all(qs).items()}
    assert got in ({"A": ["cb-7"], "B": []}, {"A": [], "B": ["cb-7"]})  # exactly one node dials it


def test_a_lost_nodes_callers_leave_the_queue_and_its_operator_is_free_again(url: str) -> None:
    clock = Clock()
    qs = nodes(url, clock, "AB", agents=2, lapse_s=5)
    for i in range(3):
        qs["B"].enqueue(f"b{i}", "general")
    qs["A"].enqueue("a0", "general")
    qs["A"].set_state("op0", AgentState.AVAILABLE)
    got = tick_all(qs)
    assert got["B"] == ["b0"]  # B's first caller is with op0
    qs["B"].connected("b0")
    # B is killed: it beats no more. Within the lapse nothing changes ...
    clock.t += 4
    tick_all({"A": qs["A"]})
    assert qs["A"].length() == 3 and qs["A"].agents["op0"].state == AgentState.ON_CALL
    clock.t += 2  # ... then A gives B up
    tick_all({"A": qs["A"]})
    assert qs["A"].lost_nodes == {"B": 2}  # its two waiting callers: abandoned by node loss
    assert [c.call_id for c in qs["A"].queued()] == []  # op0 is free again and took a0
    assert qs["A"].agents["op0"].state == AgentState.ON_CALL and qs["A"].agents["op0"].call_id == "a0"
    (lost,) = [n for n in qs["A"].centre.nodes() if n.node == "B"]
    assert (lost.state, lost.lost_callers) == ("lost", 2)
    # B comes back (it had only stalled): its callers still waiting were counted lost, so they do not queue
    # again (they would count twice and jump a0); each is told it cannot wait, and its flow takes a message
    assert sorted(e.call_id for e in qs["B"].tick() if isinstance(e, Rejected)) == ["b1", "b2"]
    assert qs["B"].queued() == [] and qs["B"].own_waiting == 0
    tick_all(qs)
    assert [c.call_id for c in qs["A"].queued()] == [] and qs["A"].centre.view(clock.t)["queue"] == [
        {"call_id": "a0", "node": "A", "group": "general", "priority": 2, "waited_s": 6.0, "callback": False,
         "status": "connecting", "agent": "op0"}]
    (back,) = [n for n in qs["A"].centre.nodes() if n.node == "B"]
    assert (back.state, back.lost_callers) == ("up", 2)


def test_a_node_restarted_lets_go_of_what_its_previous_run_left(url: str) -> None:
    clock = Clock()
    qs = nodes(url, clock, "AB")
    qs["B"].enqueue("b0", "general")
    qs["B"].enqueue("b1", "general")
    qs["A"].set_state("op0", AgentState.AVAILABLE)
    assert tick_all(qs)["B"] == ["b0"]
    again = SharedQueue(GROUPS, clock, Centre.open(url, "B"), sync_every_s=0)  # B restarted after a crash
    assert again.lost_callers == 2  # b1 waiting, b0 being put through
    qs["A"].tick()
    assert qs["A"].length() == 0 and qs["A"].agents["op0"].state == AgentState.AVAILABLE


def test_the_node_holding_a_caller_is_woken_when_another_node_gives_it_an_operator(url: str) -> None:
    clock = Clock()
    wake = Wakeup(url, "A")
    try:  # neither node looks at the database on its own for an hour
        a = SharedQueue(GROUPS, clock, Centre.open(url, "A"), sync_every_s=3600, wake=wake)
        b = SharedQueue(GROUPS, clock, Centre.open(url, "B"), sync_every_s=3600)
        for q in (a, b):
            q.add_agent("op0", "sip:op0@127.0.0.1", ("general",), AgentState.SIGNED_OUT)
            q.tick()
        a.enqueue("a0", "general")
        assert a.tick() == []  # nobody to take it
        while wake.take():  # (the listener's start)
            pass
        b.enqueue("b-later", "general")
        b.set_state("op0", AgentState.AVAILABLE)  # signed in on B: B assigns at once, to A's earlier caller
        assert b.tick() == []
        deadline = time.monotonic() + 60  # only stops a hung test
        while not wake.woken.is_set():
            assert time.monotonic() < deadline, "A was not notified"
            time.sleep(0.01)
        assert [(e.call_id, e.agent_id) for e in a.tick() if isinstance(e, Connect)] == [("a0", "op0")]
        assert wake.notified == 1  # B's caller queued, op0 signed in: no wake-up for A
    finally:
        wake.close()


def test_an_operator_goes_to_one_call_at_a_time_with_200_callers_on_three_processes(url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    procs, logs = [], []
    for node, callers in (("n1", 67), ("n2", 67), ("n3", 66)):
        log = tmp_path / f"{node}.log"
        logs.append(log)
        procs.append(subprocess.Popen([sys.executable, str(HERE / "centre_proc.py"), url, node, str(log), str(go),
                                       str(callers), "20", "2", "0.1", "30"]))
    try:
        deadline = time.monotonic() + 300  # only stops a hung test
        while not all(log.exists() and "ready" in log.read_text() for log in logs):
            assert all(p.poll() is None for p in procs) and time.monotonic() < deadline
            time.sleep(0.05)
        go.touch()
        for p in procs:
            assert p.wait(timeout=600) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    lines = [line.split() for log in logs for line in log.read_text().splitlines()]
    queued = {c for what, c, _, _ in lines if what == "queued"}
    connected = Counter(c for what, c, _, _ in lines if what == "connect")
    messages = {c for what, c, _, _ in lines if what == "message"}
    assert len(queued) == 200
    assert set(connected) | messages == queued and not set(connected) & messages
    assert max(connected.values()) == 1
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    started = {c: (a, float(t)) for what, c, a, t in lines if what == "connect"}
    for what, c, a, t in lines:
        if what == "end":
            assert started[c][0] == a
            spans[a].append((started[c][1], float(t)))
    assert len(spans) == 20  # every operator took calls ...
    for agent, calls in spans.items():  # ... one at a time
        calls.sort()
        assert all(end <= nxt for (_, end), (nxt, _) in zip(calls, calls[1:])), agent
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        given = conn.execute(sa.text("SELECT sum(calls) FROM centre_agents")).scalar()
        left = conn.execute(sa.text("SELECT count(*) FROM centre_calls")).scalar()
    engine.dispose()
    assert (given, left) == (len(connected) + sum(1 for x in lines if x[0] == "freed"), 0)


def test_one_view_of_the_centre_in_the_cli_and_the_gauges_of_any_node(url: str, tmp_path: Path) -> None:
    clock = Clock()
    qs = nodes(url, clock, "AB", agents=2, lapse_s=5)
    qs["A"].enqueue("a0", "general")
    qs["B"].enqueue("b0", "general", Priority.ELDERLY)
    qs["B"].enqueue("b1", "general")
    qs["A"].enqueue("cb-3", "general", callback=True, entered=clock.t - 50)
    qs["A"].set_state("op1", AgentState.AVAILABLE)
    tick_all(qs)  # op1 takes the callback (first in rank), dialled by A
    clock.t += 6
    qs["A"].tick()  # B has stopped beating: lost
    env = {"IVR_DATA_DIR": str(tmp_path), "IVR_QUEUE_DATABASE_URL": url, "IVR_NODE_ID": "A"}
    res = CliRunner().invoke(cli, ["queue", "status", "--json"], env=env)
    assert res.exit_code == 0, res.output
    centre = json.loads(res.output)["centre"]
    assert [(c["call_id"], c["node"], c["status"]) for c in centre["queue"]] == [
        ("cb-3", "A", "connecting"), ("a0", "A", "waiting")]
    assert {a: v["state"] for a, v in centre["agents"].items()} == {"op0": "signed_out", "op1": "on_call"}
    res = CliRunner().invoke(cli, ["cluster", "status", "--json"], env=env)
    assert res.exit_code == 0, res.output
    assert [(n["node"], n["state"], n["lost_callers"]) for n in json.loads(res.output)] == [
        ("A", "up", 0), ("B", "lost", 2)]
    text = CliRunner().invoke(cli, ["cluster", "status"], env=env).output
    assert "1 of 2 node(s) up; 1 waiting in the centre's queue" in text
    text = CliRunner().invoke(cli, ["queue", "status"], env=env).output
    assert "the centre's queue" in text and "a0" in text and "operators (centre)" in text, text
    metrics = QueueMetrics(qs["A"])
    metrics.refresh()
    got = generate_latest(metrics.registry).decode()
    for line in ('ivr_centre_waiting{group="general",kind="caller"} 1.0', 'ivr_centre_agents{state="on_call"} 1.0',
                 'ivr_centre_nodes{state="lost"} 1.0', 'ivr_centre_lost_callers{node="B"} 2.0',
                 "ivr_node_waiting 1.0"):
        assert line in got, got


def test_cluster_status_without_a_centre_says_what_to_set(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["cluster", "status"], env={"IVR_DATA_DIR": str(tmp_path)})
    assert res.exit_code == 1
    assert res.output.strip() == ("ivr: no centre: set queue_database_url (the PostgreSQL the nodes share) to see "
                                  "one")


def test_with_the_database_away_a_node_refuses_new_callers_keeps_its_changes_and_writes_them_when_it_is_back(
        caplog: pytest.LogCaptureFixture) -> None:
    server = PgCluster()  # its own server, shut down under the node
    try:
        clock = Clock()
        q = SharedQueue(GROUPS, clock, Centre.open(fresh_database(server), "A"), sync_every_s=0)
        q.add_agent("op0", "sip:op0@127.0.0.1", ("general",))
        q.enqueue("a0", "general")
        (connect,) = q.tick()
        q.connected("a0")
        q.enqueue("a1", "general")  # waits for op0
        server.shut_down()
        with caplog.at_level(logging.ERROR, "ivr.queue.shared"):
            assert q.tick() == []  # the node finds the centre away
            assert q.enqueue("a2", "general") == [Rejected("a2", "queue database unavailable")]  # leaves a message
            clock.t += 30
            q.call_ended("op0")  # the call in progress went on and ended meanwhile
            clock.t += 10
            assert q.tick() == []  # wrap-up over, but nobody is given an operator while the centre is away
        assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["the queue database cannot be reached"]
        assert len(q.retries) == 2  # op0's wrap-up and its end, kept
        server.start()
        clock.t += 1
        got = [e for e in q.tick() if isinstance(e, Connect)]
        assert (q.retries, [(e.call_id, e.agent_id) for e in got]) == ([], [("a1", "op0")])
        assert q.centre.agents()["op0"].state == AgentState.ON_CALL and q.stats.rejected == 1
    finally:
        server.stop()


def test_every_nodes_console_shows_the_operators_as_the_centre_has_them(url: str) -> None:
    clock = Clock()
    qs = nodes(url, clock, "AB", agents=0)
    op = AgentConfig("op0", "op0", "sip:op0@127.0.0.1", ("general",))
    dirs = {n: AgentDirectory(url, (op,), clock) for n in "AB"}
    for n in "AB":
        dirs[n].populate(qs[n])
        dirs[n].live_states = qs[n].agent_states  # as `ivr serve` wires a node of a centre
    qs["B"].enqueue("b0", "general")
    assert tick_all(qs)["B"] == ["b0"]  # op0 on B's caller; neither node has written its mirror back yet
    tick_all(qs)
    assert {n: [(s.agent_id, s.state) for s in dirs[n].statuses()] for n in "AB"} == {
        "A": [("op0", AgentState.ON_CALL)], "B": [("op0", AgentState.ON_CALL)]}
    assert dirs["A"].get("op0").since == qs["A"].centre.agents()["op0"].since == clock.t
    qs["B"].connected("b0")
    clock.t += 30
    qs["B"].call_ended("op0")
    dirs["A"].set_state("op0", "wrap_up", "zhang")  # a pause asked for on A's console
    for n in "AB":
        dirs[n].sync(qs[n])
    tick_all(qs)
    assert {n: dirs[n].get("op0").state for n in "AB"} == {"A": AgentState.WRAP_UP, "B": AgentState.WRAP_UP}
    assert {n: dirs[n].statuses()[0].state for n in "AB"} == {"A": AgentState.WRAP_UP, "B": AgentState.WRAP_UP}


def test_one_nodes_queue_written_back_is_not_taken_by_another_node_for_a_persons_request(url: str) -> None:
    clock = Clock()
    qs = nodes(url, clock, "AB", agents=0)
    op = AgentConfig("op0", "op0", "sip:op0@127.0.0.1", ("general",))
    dirs = {n: AgentDirectory(url, (op,), clock) for n in "AB"}  # what `ivr queue agent` and the console set

    def sync() -> None:
        tick_all(qs)
        for n in "BA":
            dirs[n].sync(qs[n])

    for n in "AB":
        dirs[n].populate(qs[n])
    qs["B"].enqueue("b0", "general")
    assert tick_all(qs)["B"] == ["b0"]
    qs["B"].connected("b0")
    sync()
    clock.t += 30
    qs["B"].call_ended("op0")  # B's queue: wrap-up, written back to the operators' table by B
    sync()
    sync()
    assert dirs["A"].pausing() == frozenset()  # not a wrap-up pause someone asked for: op0 is not taken out
    assert qs["A"].centre.agents()["op0"].state == AgentState.WRAP_UP
    clock.t += 10
    qs["A"].enqueue("a0", "general")
    assert tick_all(qs)["A"] == ["a0"]  # op0 free again after the desk's 10 s wrap-up
