"""Decode statistics and admission to live recognition, on a hand-driven clock."""
from __future__ import annotations

import pytest

from asr.load import Admission, DecodeJob, DecodeStats


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def job(clock: Clock, lag: float, audio_ms: int = 200, final: bool = False, batch_s: float = 0.2) -> DecodeJob:
    end = clock.t
    return DecodeJob(1, audio_ms, end - lag - batch_s, end - lag, end - 0.05, end, 0.02, final)


def test_snapshot_percentiles_over_the_window() -> None:
    clock = Clock()
    stats = DecodeStats(clock=clock)
    for i in range(100):
        stats.record(job(clock, lag=0.01 * i, final=i % 10 == 0))
    clock.t += 20  # out of a 10 s window, still kept (60 s)
    assert stats.snapshot(10).jobs == 0
    snap = stats.snapshot(30)
    assert snap.jobs == 100 and snap.lag_p95_s == pytest.approx(0.9455)  # the 90 chunks; the 10 finals apart
    assert snap.lag_oldest_p95_s == pytest.approx(snap.lag_p95_s + 0.2) and snap.lag_max_s == pytest.approx(0.99)
    assert snap.final_p95_s == pytest.approx(0.855) and snap.audio_s == pytest.approx(20.0)
    assert snap.cpu_per_audio_s == pytest.approx(0.1)


def test_admission_holds_its_limit_and_lets_priority_go_further() -> None:
    clock = Clock()
    adm = Admission(DecodeStats(clock=clock), initial=2, reserve=1, clock=clock)
    a, b = adm.admit(), adm.admit()
    assert a is not None and b is not None
    assert adm.admit() is None  # at the limit
    p = adm.admit(priority=True)
    assert p is not None and adm.admit(priority=True) is None
    assert (adm.admitted, adm.shed, adm.admitted_priority, adm.shed_priority) == (3, 2, 1, 1)
    a.release()
    a.release()  # twice is once
    assert adm.held == 2 and adm.admit() is None  # the priority step still counts
    with p:
        pass
    assert adm.admit() is not None


def test_limit_drops_under_lag_and_rises_when_saturated_and_quick() -> None:
    clock = Clock()
    stats = DecodeStats(clock=clock)
    adm = Admission(stats, initial=6, soft_lag_s=0.3, window_s=5.0, clock=clock)
    held = [adm.admit() for _ in range(4)]
    for _ in range(20):
        stats.record(job(clock, lag=0.6))
    assert adm.admit() is None and adm.limit == 3  # below what is held: nobody new until the lag falls
    clock.t += 3
    stats.record(job(clock, lag=0.6))
    assert adm.admit() is None and adm.limit == 3  # four still held: the cut has not taken effect, no second one
    held[0].release()  # type: ignore[union-attr]
    assert adm.admit() is None and adm.limit == 2  # three held fit under it and the lag is still high: cut again
    held[1].release()  # type: ignore[union-attr]
    clock.t += 1
    stats.record(job(clock, lag=0.6))
    assert adm.admit() is None and adm.limit == 2  # two held, but not again within half a window of the last cut
    clock.t += 10  # the slow jobs left the window; quick ones now, two held at a limit of two
    for _ in range(20):
        stats.record(job(clock, lag=0.05))
    assert adm.admit() is not None and adm.limit == 3
    assert adm.admit() is None  # three held at a limit of three; the next rise needs another window
    clock.t += 5
    stats.record(job(clock, lag=0.05))
    assert adm.admit() is not None and adm.limit == 4


def test_limit_rises_with_the_lag_an_idle_node_has_when_it_decodes_in_pieces() -> None:
    clock = Clock()
    stats = DecodeStats(clock=clock)
    adm = Admission(stats, initial=2, soft_lag_s=0.3, window_s=5.0, clock=clock)
    adm.admit(), adm.admit()
    for _ in range(20):
        stats.record(job(clock, lag=0.2))  # over half the soft lag, under three quarters of it
    assert adm.admit() is not None and adm.limit == 3
    clock.t += 5
    for _ in range(20):
        stats.record(job(clock, lag=0.25))  # over three quarters: held where it is
    assert adm.admit() is None and adm.limit == 3


def test_spare_room_for_work_that_can_wait() -> None:
    clock = Clock()
    stats = DecodeStats(clock=clock)
    adm = Admission(stats, initial=2, minimum=2, maximum=2, soft_lag_s=0.3, clock=clock)
    assert adm.spare()
    adm.admit()
    b = adm.admit()
    assert not adm.spare()  # every place taken
    assert b is not None
    b.release()
    assert adm.spare()
    for _ in range(10):
        stats.record(job(clock, lag=0.2))  # above half the soft lag
    assert not adm.spare() and adm.limit == 2  # a fixed limit does not move
