import math
from collections.abc import Callable

import pytest
from pgkit import fresh_database

from ivr.config import AgentGroup
from ivr.queue import (
    AgentState, Announce, CallQueue, Connect, DrainView, OfferCallback, Priority, QueueError, QueuePolicy, Rejected,
    UnknownCall, erlang_c, erlang_c_wait, projected_wait,
)
from ivr.queue.centre import Centre
from ivr.queue.shared import SharedQueue


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


GROUPS = [AgentGroup("general", wrap_up_s=10), AgentGroup("elderly", wrap_up_s=20)]


@pytest.fixture(params=["in-process", "postgresql"])
def make(request: pytest.FixtureRequest) -> Callable[..., tuple[CallQueue, Clock]]:
    """A queue with `agents` operators in the general group: the single box's, or the centre's in a real
    PostgreSQL (one node, looking at the database at every tick)."""

    def build(policy: QueuePolicy | None = None, agents: int = 2) -> tuple[CallQueue, Clock]:
        clock = Clock()
        if request.param == "in-process":
            q = CallQueue(GROUPS, clock, policy or QueuePolicy(), handle_prior_s=120)
        else:
            centre = Centre.open(fresh_database(request.getfixturevalue("pg")), "node-a")
            q = SharedQueue(GROUPS, clock, centre, policy or QueuePolicy(), handle_prior_s=120, sync_every_s=0)
        for i in range(agents):
            q.add_agent(f"a{i}", f"sip:op{i}@127.0.0.1", ("general",))
        return q, clock

    return build


def connects(events):
    return [e for e in events if isinstance(e, Connect)]


def test_fifo_within_class_and_free_agents_take_the_head(make):
    q, clock = make()
    for n in range(4):
        q.enqueue(f"c{n}", "general")
        clock.t += 1
    got = connects(q.tick())
    assert [(c.call_id, c.agent_id) for c in got] == [("c0", "a0"), ("c1", "a1")]
    assert q.position("c2") == 1 and q.position("c3") == 2
    clock.t += 50
    q.call_ended("a1")
    assert q.agents["a1"].state == AgentState.WRAP_UP
    assert connects(q.tick()) == []  # wrap-up
    clock.t += 10
    assert [c.call_id for c in connects(q.tick())] == ["c2"]


def test_elderly_overtakes_but_ageing_prevents_starvation(make):
    q, clock = make(agents=0)
    q.enqueue("old-normal", "general")
    clock.t += 400  # waited longer than the elderly credit (300 s)
    q.enqueue("n1", "general")
    clock.t += 5
    q.enqueue("eld", "general", Priority.ELDERLY)
    assert [c.call_id for c in q.queued()] == ["old-normal", "eld", "n1"]
    assert q.position("eld") == 2


def test_max_length_rejects(make):
    q, _ = make(QueuePolicy(max_length=2), agents=0)
    q.enqueue("a", "general")
    q.enqueue("b", "general")
    assert q.enqueue("c", "general") == [Rejected("c", "queue full")]
    assert q.stats.rejected == 1


def test_announcements_on_entry_and_every_n_seconds_with_offer_over_threshold(make):
    q, clock = make(QueuePolicy(announce_every_s=30, offer_callback_over_s=200), agents=1)
    q.enqueue("w", "general")
    q.tick()  # w is with the only agent for an expected 120 s
    q.enqueue("x", "general")
    ev = q.enqueue("y", "general")
    ann = ev[0]
    assert isinstance(ann, Announce) and ann.position == 2
    # nothing seen yet: one agent freeing every 120 s (the handle-time prior), so x goes in 120 s and y 120 s later
    assert ann.wait_s == pytest.approx(120 + 120)
    assert ann.wait_minutes == 4
    assert isinstance(ev[1], OfferCallback) and ev[1].reason == "threshold"
    clock.t += 29
    assert [e for e in q.tick() if isinstance(e, Announce)] == []
    clock.t += 1
    again = [e for e in q.tick() if isinstance(e, Announce)]
    assert [(a.call_id, a.position) for a in again] == [("x", 1), ("y", 2)]
    assert q.offer_on_key("x").reason == "key"


def test_callback_keeps_place_and_is_not_announced(make):
    q, clock = make(agents=1)
    q.tick()  # nothing
    q.enqueue("a", "general")
    q.enqueue("b", "general")
    q.enqueue("c", "general")
    assert connects(q.tick())[0].call_id == "a"
    q.to_callback("b")
    clock.t += 60
    assert [e.call_id for e in q.tick() if isinstance(e, Announce)] == ["c"]
    q.call_ended("a0")
    clock.t += 10
    got = connects(q.tick())
    assert got[0].call_id == "b" and got[0].callback
    assert q.stats.callbacks_booked == 1


def test_abandon_counts_and_unknown_call_message(make):
    q, _ = make(agents=0)
    q.enqueue("a", "general")
    q.abandon("a")
    assert q.stats.abandoned == 1 and q.length() == 0
    with pytest.raises(UnknownCall, match="^no queued call a$"):
        q.abandon("a")
    with pytest.raises(QueueError, match="^unknown agent group 'x'$"):
        q.enqueue("b", "x")


def test_service_level_and_estimate_error_recorded(make):
    q, clock = make(agents=1)
    q.enqueue("a", "general")
    q.tick()
    q.enqueue("b", "general")
    clock.t += 100
    q.call_ended("a0")
    clock.t += 10
    q.tick()
    assert q.stats.answered == 2
    assert q.stats.service_level(15) == 0.5
    # a was told 0 s and taken at once (too short to count in the relative error); b was told 120 s, waited 110 s
    assert q.stats.estimate_pairs == [(0.0, 0.0), (120.0, 110.0)]
    assert q.stats.abs_errors_s == [0.0, pytest.approx(10)]
    assert q.stats.estimate_errors == [pytest.approx(10 / 110)]


def test_a_short_wait_told_long_counts_in_the_relative_error(make):
    q, clock = make(agents=1)
    q.enqueue("a", "general")
    q.tick()
    q.enqueue("b", "general")  # told 120 s
    clock.t += 5
    q.call_ended("a0")  # a short call
    clock.t += 10
    q.tick()
    assert q.stats.estimate_pairs[-1] == (120.0, 15.0)
    assert q.stats.estimate_errors == [pytest.approx(105 / 30)]  # against the 30 s floor


def test_abandoned_callers_are_kept_as_censored_and_callbacks_do_not_hang_up(make):
    q, clock = make(agents=1)
    q.enqueue("a", "general")
    q.tick()
    q.enqueue("b", "general")
    q.enqueue("c", "general")
    q.to_callback("c")
    clock.t += 200
    q.abandon("b")  # told 120 s, gone after 200 s: it would have waited at least that
    assert q.stats.censored_pairs == [(120.0, 200.0)]
    assert q.stats.estimate_pairs == [(0.0, 0.0)]
    clock.t += 1
    q.tick()
    # one hang-up over 200 live caller-seconds (b alone: c became a callback at once), seen through 900 s of
    # memory; c is a callback, so no caller ahead of a newcomer is expected to hang up any more
    memory = q.rates["general"].memory_s
    assert q.rates["general"].abandon_hazard == pytest.approx(1 / (memory * (1 - math.exp(-200 / memory))))
    assert q.drain_view("general").abandon_hazard == 0.0


def test_the_estimate_follows_how_fast_the_queue_is_seen_to_drain(make):
    q, clock = make(agents=2)  # prior: 120 s a call, so 60 s a place with two agents
    for n in range(100):
        q.enqueue(f"c{n}", "general")
    ends: dict[str, float] = {}
    for _ in range(900):  # calls of 20 s + 10 s wrap-up: two agents take a caller every 15 s
        for c in connects(q.tick()):
            q.connected(c.call_id)
            ends[c.agent_id] = clock.t + 20
        for agent, end in list(ends.items()):
            if clock.t >= end:
                q.call_ended(agent)
                del ends[agent]
        clock.t += 1
    ahead = q.length("general")
    assert ahead > 0
    q.enqueue("new", "general")
    assert q.expected_wait("new") == pytest.approx((ahead + 1) * 15, rel=0.15)  # not the prior's 60 s a place


def test_higher_classes_seen_arriving_lengthen_the_wait_of_the_classes_they_overtake(make):
    q, clock = make(agents=1)
    for n in range(10):
        q.enqueue(f"u{n}", "general", Priority.URGENT)
        clock.t += 10
    q.enqueue("n", "general")
    normal = q.drain_view("general", Priority.NORMAL)
    assert normal.overtakers == ((pytest.approx(10 / 100, rel=0.1), 600.0),)  # urgent lands ahead for 600 s
    q.enqueue("e", "general", Priority.ELDERLY)
    assert q.drain_view("general", Priority.ELDERLY).overtakers == ((pytest.approx(10 / 100, rel=0.1), 300.0),)
    assert q.drain_view("general", Priority.URGENT).overtakers == ()
    assert len(q.drain_view("general", Priority.NORMAL).overtakers) == 2  # urgent and elderly
    assert normal.wait(11) > DrainView(normal.idle, normal.served_per_s).wait(11)


def test_re_estimates_announced_while_waiting_are_compared_with_the_rest_of_the_wait(make):
    q, clock = make(QueuePolicy(announce_every_s=30), agents=1)
    q.enqueue("a", "general")
    q.tick()
    q.enqueue("b", "general")
    clock.t += 30
    ann = [e for e in q.tick() if isinstance(e, Announce)]
    assert [a.call_id for a in ann] == ["b"]
    clock.t += 50
    q.call_ended("a0")
    clock.t += 10
    q.tick()
    assert q.stats.reestimate_pairs == [(ann[0].wait_s, 60.0)]


def test_signed_out_agents_give_infinite_wait_and_cannot_be_set_on_call(make):
    q, _ = make(agents=1)
    q.set_state("a0", AgentState.SIGNED_OUT)
    q.enqueue("a", "general")
    assert q.expected_wait("a") == math.inf
    with pytest.raises(QueueError, match="^state on_call is set by the queue, not by hand$"):
        q.set_state("a0", AgentState.ON_CALL)


def test_connect_failed_puts_call_back_at_its_place(make):
    q, _ = make(agents=2)
    q.enqueue("a", "general")
    q.enqueue("b", "general")
    q.enqueue("c", "general")
    got = connects(q.tick())
    q.connect_failed(got[0].call_id, got[0].agent_id)
    assert [c.call_id for c in q.queued()] == ["a", "c"]
    assert q.agents["a0"].state == AgentState.SIGNED_OUT


def test_erlang_c_known_value_and_projection():
    # 10 agents, 8 erlangs: P(wait) ~ 0.409 (standard table)
    assert erlang_c(10, 8.0) == pytest.approx(0.4092, abs=1e-3)
    assert erlang_c_wait(10, 8.0 / 180, 180) == pytest.approx(0.4092 * 180 / 2, rel=1e-3)
    assert projected_wait(0, [0, 50], 1, 100) == 0
    assert projected_wait(0, [0, 50], 2, 100) == 50
    assert projected_wait(0, [0, 50], 3, 100) == 100
    assert projected_wait(0, [0, 50], 7, 100) == 300


def test_calls_that_end_at_once_do_not_break_the_estimate() -> None:
    q = CallQueue([AgentGroup("general", wrap_up_s=0.0)], lambda: 0.0)  # a clock that never moves
    q.add_agent("a", "sip:a@127.0.0.1:5070", ("general",))
    q.set_state("a", AgentState.AVAILABLE)
    for i in range(8):
        q.enqueue(f"c{i}", "general")
        for event in q.tick():
            if isinstance(event, Connect):
                q.connected(event.call_id)
                q.call_ended(event.agent_id)
    q.enqueue("late", "general")
    assert 0.0 < q.expected_wait("late") < float("inf")


def test_a_call_handed_off_by_refer_ends_when_reported_or_is_presumed_ended(make):
    q, clock = make(agents=1)
    q.enqueue("c1", "general")
    [c] = connects(q.tick())
    q.connected("c1")
    q.handed_off("a0", busy_s=300)
    assert q.out_of_sight("a0")
    clock.t += 299
    q.tick()
    assert q.agents["a0"].state == AgentState.ON_CALL
    clock.t += 1
    q.tick()  # nobody reported the end: presumed ended, and the guess is not taken as a handle time
    assert q.agents["a0"].state == AgentState.WRAP_UP and not q.out_of_sight("a0")
    assert q.handle_time("general") == 120  # still the prior
    clock.t += 10
    q.enqueue("c2", "general")
    [c] = connects(q.tick())
    q.connected("c2")
    q.handed_off("a0", busy_s=300)
    clock.t += 50
    q.call_ended("a0")  # reported: observed
    assert not q.out_of_sight("a0") and q.handle_time("general") < 120  # 60 s (50 + 10 wrap-up) seen
    with pytest.raises(QueueError, match="agent a0 is not on a call"):
        q.handed_off("a0", busy_s=300)


def test_a_small_group_estimates_from_how_long_the_calls_in_progress_have_lasted(make):
    q, clock = make(agents=2)  # wrap-up 10 s
    for n in range(3):  # three calls of 90 s talk + 10 s wrap-up, nobody waiting: 100 s handle times seen
        q.enqueue(f"x{n}", "general")
        [c] = connects(q.tick())
        q.connected(c.call_id)
        clock.t += 90
        q.call_ended(c.agent_id)
        clock.t += 10
        q.tick()
    q.enqueue("old", "general")
    [old] = connects(q.tick())
    clock.t += 80
    q.enqueue("new", "general")
    [new] = connects(q.tick())
    # one call 80 s in (20 s to go with wrap-up), one just begun (100 s); rate alone: two agents, 100 s a call
    [ann] = [e for e in q.enqueue("p1", "general") if isinstance(e, Announce)]
    assert ann.wait_s == pytest.approx(20.0)
    assert q.drain_view("general").wait(1) == pytest.approx(50.0)
    assert q.drain_view("general", position=1).departures == (20.0,) * 4 + (100.0,) * 4
    q.enqueue("p2", "general")
    assert q.expected_wait("p2") == pytest.approx(100.0)
    clock.t += 10
    q.call_ended(old.agent_id)
    clock.t += 10
    assert [c.call_id for c in connects(q.tick())] == ["p1"]
    assert q.stats.estimate_pairs[-1] == (pytest.approx(20.0), 20.0)


def test_remove_agent_not_while_on_a_call(make):
    q, clock = make(agents=2)
    q.enqueue("c1", "general")
    q.tick()
    with pytest.raises(QueueError, match="agent a0 is on a call"):
        q.remove_agent("a0")
    q.remove_agent("a1")
    assert set(q.agents) == {"a0"}
    q.enqueue("c2", "general")
    assert q.drain_view("general").idle == 0 and not connects(q.tick())  # a1 no longer counts as staff
