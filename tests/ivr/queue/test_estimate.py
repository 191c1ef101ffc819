"""The wait estimate's parts, on hand-made numbers: no clock, no queue."""
import math

import pytest

from ivr.config import AgentGroup
from ivr.queue.estimate import (
    BandCalibration, DrainRates, DrainView, HandleTimes, PositionRegression, departures, drain_wait, kth_departure,
    relative_error, spoken_minutes, spoken_seconds, staffing_free_at,
)
from ivr.queue.model import Agent, AgentState


def test_drain_wait_without_hang_ups_is_the_callers_ahead_then_the_next_agent():
    assert drain_wait(0, 0.5) == pytest.approx(2.0)
    assert drain_wait(9, 0.5) == pytest.approx(18.0 + 2.0)
    assert drain_wait(3, 0.0) == math.inf


def test_callers_ahead_hanging_up_shorten_the_wait_as_the_fluid_model_says():
    mu, theta, ahead = 2.0, 1 / 240, 200
    t = drain_wait(ahead, mu, theta)
    assert t == pytest.approx(240 * math.log(1 + ahead / (240 * mu)) + 0.5)
    assert t < drain_wait(ahead, mu)
    # the fluid solution: ahead(t) = (ahead0 + mu/theta) e^(-theta t) - mu/theta reaches 0 when the wait begins
    t0 = t - 0.5
    assert (ahead + mu / theta) * math.exp(-theta * t0) - mu / theta == pytest.approx(0.0, abs=1e-9)


def test_overtakers_add_the_arrivals_that_land_ahead_within_their_window():
    base = drain_wait(10, 1.0)  # 11 s
    # 0.1 urgent callers a second, each landing ahead if it comes within 600 s: about 1.1 more ahead
    assert drain_wait(10, 1.0, overtakers=((0.1, 600.0),)) == pytest.approx(10 + 0.1 * 10 + 1)
    # a class that lands ahead only within 5 s of this caller's entry adds 0.5 callers
    assert drain_wait(10, 1.0, overtakers=((0.1, 5.0),)) == pytest.approx(base + 0.5)


def test_drain_wait_refuses_a_negative_count():
    with pytest.raises(ValueError, match=r"^callers ahead must not be negative, got -1$"):
        drain_wait(-1, 1.0)


def test_view_says_zero_while_idle_agents_will_take_the_caller():
    view = DrainView(idle=2, served_per_s=0.5)
    assert view.wait(1) == 0.0 and view.wait(2) == 0.0
    assert view.wait(3) == pytest.approx(2.0)  # first in line once the idle agents are taken
    with pytest.raises(ValueError, match=r"^position must be >= 1, got 0$"):
        view.wait(0)


def test_rates_count_service_only_while_callers_wait_with_no_idle_agent():
    r = DrainRates(memory_s=1e9)  # no forgetting: plain counts
    r.advance(0.0, waiting=0, live=0, idle=0, staffed=10)
    r.advance(100.0, waiting=0, live=0, idle=3, staffed=10)  # no queue: not a time the head moved
    r.advance(200.0, waiting=5, live=5, idle=3, staffed=10)  # idle agents: callers are about to be taken
    r.advance(300.0, waiting=5, live=4, idle=0, staffed=10)  # 100 s of backlog with 10 agents
    for _ in range(20):
        r.served()
    # 20 served in 1000 agent-seconds, with a 5-event prior at 1 per 100 s per agent: (20 + 5) / (1000 + 500)
    assert r.served_per_s(staffed=10, prior_handle_s=100.0) == pytest.approx(10 * 25 / 1500, rel=1e-6)
    # staffing changes count at once
    assert r.served_per_s(staffed=5, prior_handle_s=100.0) == pytest.approx(5 * 25 / 1500, rel=1e-6)
    r.abandoned()
    r.abandoned()
    # 2 hang-ups over 5 x 100 + 4 x 100 live caller-seconds
    assert r.abandon_hazard == pytest.approx(2 / 900, rel=1e-6)


def test_rates_start_at_the_prior_and_forget_old_events():
    r = DrainRates(memory_s=100.0)
    assert r.served_per_s(staffed=4, prior_handle_s=200.0) == pytest.approx(4 / 200)
    assert r.abandon_hazard == 0.0 and r.arrivals_per_s(0) == 0.0
    r.advance(0.0, 1, 1, 0, 4)
    for _ in range(50):
        r.served()
        r.arrived(0)
    r.advance(10.0, 1, 1, 0, 4)
    seen = 50 * math.exp(-0.1)
    assert r.served_per_s(4, 200.0) == pytest.approx(4 * (seen + 5) / (4 * 100 * (1 - math.exp(-0.1)) + 1000))
    assert r.arrivals_per_s(0) == pytest.approx(50 * math.exp(-0.1) / (100 * (1 - math.exp(-0.1))))
    r.advance(2000.0, 1, 1, 0, 4)  # 20 memories later, nothing served all along: below the prior
    assert r.served_per_s(4, 200.0) == pytest.approx(4 * 5 / (400 + 1000), rel=1e-6)
    with pytest.raises(ValueError, match=r"^memory must be positive, got 0$"):
        DrainRates(memory_s=0)
    with pytest.raises(ValueError, match=r"^prior handle time must be positive, got 0.0$"):
        r.served_per_s(4, 0.0)


def test_band_calibration_uses_the_median_ratio_of_its_band_after_enough_calls():
    cal = BandCalibration(min_count=20)
    for i in range(19):
        cal.observe("general", 5, 100.0, 80.0 + i)  # ratios 0.80 .. 0.98
    assert cal.factor("general", 5) == 1.0  # not enough yet
    cal.observe("general", 6, 100.0, 99.0)
    cal.observe("general", 7, 10.0, 100.0)  # estimates under 30 s are not used
    assert cal.factor("general", 4) == pytest.approx(0.90)  # 4..7 is one band
    assert cal.factor("general", 8) == 1.0 and cal.factor("elderly", 5) == 1.0


def test_position_regression_forgets_old_waits_exponentially():
    reg = PositionRegression(keep=0.5)
    assert reg.predict("general", 10) is None
    reg.observe("general", 10, 50.0)  # 5 s a position
    assert reg.predict("general", 12) == pytest.approx(60.0)
    reg.observe("general", 9, 90.0)  # 10 s a position, same band (8..15)
    assert reg.predict("general", 8) == pytest.approx(8 * 7.5)
    assert reg.predict("general", 16) is None
    with pytest.raises(ValueError, match=r"^keep must be between 0 and 1, got 1.0$"):
        PositionRegression(keep=1.0)


@pytest.mark.parametrize("wait_s, minutes", [
    (0.0, 0), (59.9, 0), (60.0, 1), (89.0, 1), (90.0, 2), (149.0, 2), (150.0, 3), (600.0, 10), (math.inf, 0),
])
def test_spoken_minutes_say_under_a_minute_then_the_nearest_minute(wait_s, minutes):
    assert spoken_minutes(wait_s) == minutes


def test_what_is_said_is_compared_with_the_wait_it_stands_for():
    assert spoken_seconds(0, 40.0) == 40.0  # "under a minute" and it was: exact
    assert spoken_seconds(0, 75.0) == 60.0
    assert spoken_seconds(2, 75.0) == 120.0
    assert relative_error(0.0, 3.0) == pytest.approx(0.1)  # 3 s against the 30 s floor, not 100 %
    assert relative_error(100.0, 80.0) == pytest.approx(0.25)


def test_residuals_are_quantiles_of_the_handle_times_longer_than_the_call_so_far():
    h = HandleTimes(prior_s=120.0)
    assert h.residuals(30.0, 10.0) == [90.0] * 4  # nothing seen: the prior mean less the age
    assert h.residuals(200.0, 10.0) == [10.0] * 4  # past the prior: the wrap-up still to come
    for s in range(100, 200, 10):  # 100, 110, ..., 190 (talk + wrap-up)
        h.observe(float(s))
    # 50 s into the talk with 10 s of wrap-up: all ten are longer; quantiles 1/8, 3/8, 5/8, 7/8 of them less 50 s
    assert h.residuals(50.0, 10.0) == [60.0, 80.0, 110.0, 130.0]
    # 145 s in: only 160..190 are longer than 145 + 10
    assert h.residuals(145.0, 10.0) == [15.0, 25.0, 35.0, 45.0]
    assert h.residuals(185.0, 10.0) == [10.0] * 4  # longer than any seen: ends now, then the wrap-up


def test_residuals_forget_the_handle_times_that_left_the_window():
    h = HandleTimes(window=3)
    for s in (5.0, 1.0, 3.0, 2.0):
        h.observe(s)
    assert h.residuals(0.0, 0.0, points=3) == [1.0, 2.0, 3.0]  # 5 s is gone
    assert h.mean == pytest.approx(2.0)


def test_departures_put_every_agent_as_four_points_sorted():
    h = HandleTimes()
    for s in range(100, 200, 10):
        h.observe(float(s))
    groups = {"general": AgentGroup("general", wrap_up_s=5.0), "elderly": AgentGroup("elderly", wrap_up_s=10.0)}
    both = ("general", "elderly")
    agents = [
        Agent("talk", "sip:a", both, AgentState.ON_CALL),  # 50 s in; wrap-up 10 s, the longer of its groups
        Agent("wrap", "sip:b", both, AgentState.WRAP_UP, wrap_up_until=1003.0),
        Agent("due", "sip:c", both, AgentState.WRAP_UP, wrap_up_until=998.0),  # already due: at least 1 s
        Agent("idle", "sip:d", both, AgentState.AVAILABLE),  # after a whole call
        Agent("out", "sip:e", both, AgentState.SIGNED_OUT),
    ]
    got = departures(h, agents, {"talk": 950.0}, groups, now=1000.0)
    assert got == (1.0,) * 4 + (3.0,) * 4 + (60.0, 80.0, 110.0, 110.0, 130.0, 130.0, 160.0, 180.0)
    # the staffing projection: a call at the mean handle time, a wrap-up when it ends, an idle agent now
    assert staffing_free_at(agents, {"talk": 950.0}, 1000.0, 145.0) == [1095.0, 1003.0, 998.0, 1000.0]


def test_kth_departure_counts_off_the_points_then_the_agents_cycles():
    deps = (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0)  # two agents, four points each
    # about the median: k - 0.5 departures, point 2.5 for the first (between 20 and 30), 6.5 for the second
    assert kth_departure(deps, 100.0, 1.0, offset=0.5) == pytest.approx(25.0)
    assert kth_departure(deps, 100.0, 2.0, offset=0.5) == pytest.approx(65.0)
    # as told: k - 0.75 departures, points 1.5 and 5.5
    assert kth_departure(deps, 100.0, 1.0) == pytest.approx(15.0)
    assert kth_departure(deps, 100.0, 2.0) == pytest.approx(55.0)
    # the third needs an agent a second time: after 10..80 come 110, 120: point 9.5 is between 110 and 120
    assert kth_departure(deps, 100.0, 3.0) == pytest.approx(115.0)
    # with a 30 s cycle the first points come again (40, 50, ...) before the last ones: 10, 20, 30, 40, 40, 50
    assert kth_departure(deps, 30.0, 2.0) == pytest.approx(45.0)
    assert kth_departure(deps, 100.0, 0.2) == pytest.approx(10.0)  # never before the first point
    # one agent at 10 s then every 100 s: the third departure at 210 s; points spread over more than a cycle
    assert kth_departure((10.0,), 100.0, 3.0, points=1) == pytest.approx(210.0 - 0.25 * 100.0)
    assert kth_departure((0.0, 1000.0), 10.0, 3.0, points=1, offset=0.5) == pytest.approx(20.0)
    with pytest.raises(ValueError, match=r"^no departures$"):
        kth_departure((), 100.0, 1.0)
    with pytest.raises(ValueError, match=r"^cycle must be positive, got 0.0$"):
        kth_departure(deps, 0.0, 1.0)


def test_view_with_departures_counts_the_fluid_models_callers_off_them():
    deps = (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0)
    view = DrainView(idle=0, served_per_s=0.02, departures=deps)  # two agents, one call per 100 s each
    assert view.wait(1) == pytest.approx(15.0)  # not 1 / 0.02 = 50 s
    assert view.wait(2) == pytest.approx(55.0)
    # callers ahead hanging up: the fluid model has 1.81 departures to wait for, not 2
    hang = DrainView(idle=0, served_per_s=0.02, abandon_hazard=0.01, departures=deps)
    k = 0.02 * (math.log(1.5) / 0.01 + 50.0)
    assert k == pytest.approx(1.8109, abs=1e-4)
    # point (k - 0.75) x 4 + 0.5 = 4.744: between 40 and 50
    assert hang.wait(2) == pytest.approx(50.0 - (5 - ((k - 0.75) * 4 + 0.5)) * 10.0)
    assert hang.wait(2) == pytest.approx(47.437, abs=1e-3)
    assert DrainView(idle=1, served_per_s=0.02, departures=deps).wait(1) == 0.0
