import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo
from pathlib import Path

import pytest
from pgkit import fresh_database

from ivr.queue.callbacks import CallbackNotFound, CallbackStore, CallingHours, RetryPolicy

HERE = Path(__file__).parent


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(params=["sqlite", "postgresql"])
def cb_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The callbacks database: one node's callbacks.db, or the centre's PostgreSQL (a real server)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cb.db'}"
    return fresh_database(request.getfixturevalue("pg"))


def store(url: str, **kw) -> tuple[CallbackStore, Clock]:
    clock = Clock()
    return CallbackStore(url, clock=clock, **kw), clock


def test_booked_callback_is_on_disk_before_returning(cb_url, tmp_path):
    s, _ = store(cb_url)
    cb_id = s.book("13812345678", "general", 2, entered=10.0, rank=10.0, ticket="T-1")
    other = CallbackStore(cb_url)  # a second process's view
    got = other.get(cb_id)
    assert (got.number, got.ticket, got.status) == ("13812345678", "T-1", "pending")


def test_claim_next_in_rank_order_and_only_once(cb_url, tmp_path):
    s, _ = store(cb_url)
    a = s.book("1", "general", 2, entered=10, rank=10)
    b = s.book("2", "general", 1, entered=20, rank=5)  # elderly: ranked ahead
    assert s.claim_next("w1").id == b
    assert s.claim(b, "w2") is False
    assert s.claim_next("w2").id == a
    assert s.claim_next("w3") is None


def test_no_answer_retried_then_failed(cb_url, tmp_path):
    s, clock = store(cb_url, policy=RetryPolicy(max_attempts=2, backoff_s=(60.0,)))
    cb = s.book("13800000000", "general", 2, entered=0, rank=0, ticket="T-9")
    assert s.claim(cb, "w")
    after = s.finish(cb, "w", "no_answer")
    assert (after.status, after.attempts, after.next_attempt_at) == ("pending", 1, clock.t + 60)
    assert s.claim(cb, "w") is False  # not due yet
    clock.t += 60
    assert s.claim(cb, "w")
    final = s.finish(cb, "w", "busy")
    assert (final.status, final.attempts, final.last_result) == ("failed", 2, "busy")
    assert s.counts()["failed"] == 1
    with pytest.raises(CallbackNotFound, match=f"^callback {cb} is not being dialled by w$"):
        s.finish(cb, "w", "answered")


def test_calling_hours_block_claims_and_push_retries():
    hours = CallingHours(open_h=8, close_h=20, quiet_from_h=12, quiet_to_h=13.5, tz=ZoneInfo("Asia/Shanghai"))
    # 2026-11-28 03:00 UTC = 11:00 Beijing
    t = datetime(2026, 11, 28, 3, 0, tzinfo=timezone.utc).timestamp()
    assert hours.allowed(t)
    assert not hours.allowed(t + 3600 * 1.5)  # 12:30 quiet
    assert hours.next_allowed(t + 3600 * 1.5) == t + 3600 * 2.5  # 13:30
    assert not hours.allowed(t + 3600 * 10)  # 21:00 closed
    assert hours.next_allowed(t + 3600 * 10) == t + 3600 * 21  # 08:00 next day


def test_claim_refused_outside_hours(cb_url, tmp_path):
    night = datetime(2026, 11, 28, 15, 0, tzinfo=timezone.utc).timestamp()  # 23:00 Beijing
    s = CallbackStore(cb_url, clock=lambda: night, hours=CallingHours())
    cb = s.book("1", "general", 2, 0, 0)
    assert s.claim(cb, "w") is False and s.claim_next("w") is None


def test_sigkill_with_pending_callbacks_each_dialled_once_in_order(cb_url, tmp_path):
    url = cb_url
    s = CallbackStore(url)
    ids = [s.book(f"1380000{i:04d}", "general", 2, entered=float(i), rank=float(i)) for i in range(40)]
    log = tmp_path / "dials.log"
    cmd = [sys.executable, str(HERE / "dialler_proc.py"), url, str(log)]
    proc = subprocess.Popen(cmd + ["w1", "0.05"], env={**os.environ, "PYTHONPATH": os.getcwd()})
    while not log.exists() or len(log.read_text().split()) < 12:
        time.sleep(0.02)
        assert proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = [int(x) for x in log.read_text().split()]
    assert len(before) < len(ids)
    interrupted = [c.id for c in s.outstanding() if c.status == "dialling"]
    time.sleep(0.6)  # let the dead dialler's lease expire
    subprocess.run(cmd + ["w2", "0"], check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    dials = [int(x) for x in log.read_text().split()]
    # every callback dialled, in order; the only repeat is a call cut by the kill, dialled again at its place
    assert sorted(set(dials)) == ids
    assert [d for i, d in enumerate(dials) if d not in dials[:i]] == ids
    repeats = {d for d in dials if dials.count(d) > 1}
    assert repeats <= set(interrupted) and len(repeats) <= 1
    assert all(dials.count(d) == 1 for d in ids if d not in interrupted)
    assert s.counts() == {"pending": 0, "dialling": 0, "done": 40, "failed": 0}
    for d in repeats:
        assert s.get(d).attempts == 1  # the interrupted attempt was not counted


def test_a_renewed_lease_is_kept_and_an_expired_one_taken_back_once(cb_url, tmp_path):
    s, clock = store(cb_url)
    other = CallbackStore(cb_url, clock=clock)  # a second worker on the same store
    cb = s.book("13800000000", "general", 2, entered=0, rank=0)
    assert s.claim(cb, "w1", lease_s=10.0)
    clock.t += 8
    assert s.renew([cb], "w1", lease_s=10.0) == {cb} and other.renew([cb], "w2", lease_s=10.0) == set()
    clock.t += 8  # past the first lease, within the renewed one
    assert other.recover() == 0 and s.get(cb).status == "dialling"
    clock.t += 3
    assert other.recover() + s.recover() == 1  # taken back exactly once
    got = s.get(cb)
    assert (got.status, got.attempts, got.last_result) == ("pending", 0, "interrupted")
    assert s.renew([cb], "w1", lease_s=10.0) == set()  # w1 learns it lost the lease
    with pytest.raises(CallbackNotFound, match=f"^callback {cb} is not being dialled by w1$"):
        s.finish(cb, "w1", "answered")


@pytest.mark.sipp
@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed")
def test_a_running_worker_takes_back_a_killed_workers_callback_after_its_lease(cb_url, tmp_path, sipp):
    _, citizen = sipp(["-sn", "uas"], 10)
    url = cb_url
    s = CallbackStore(url)
    cb = s.book("13955556666", "general", 2, entered=1.0, rank=1.0, ticket="T-1")
    log = tmp_path / "dials.log"
    lease = "6"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}

    def worker(owner: str, hold_s: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, str(HERE / "runner_proc.py"), url, str(log), owner, lease, hold_s,
                                 str(citizen)], env=env)

    def wait_for(line: str, *procs: subprocess.Popen) -> None:
        for _ in range(2400):
            if log.exists() and line in log.read_text().splitlines():
                return
            assert all(p.poll() is None for p in procs), log.read_text() if log.exists() else ""
            time.sleep(0.05)
        raise AssertionError(f"no {line!r} in the dial log: {log.read_text() if log.exists() else ''}")

    w1 = worker("w1", "600")  # a long live call: its lease must be renewed
    w2 = None
    try:
        wait_for(f"{cb} w1", w1)
        w2 = worker("w2", "0.5")
        wait_for("ready w2", w1, w2)
        for _ in range(36):  # three leases while w1 lives: w2 never takes the callback
            time.sleep(0.5)
            assert s.get(cb).status == "dialling" and f"{cb} w2" not in log.read_text()
        w1.send_signal(signal.SIGKILL)
        w1.wait()
        wait_for(f"{cb} w2", w2)  # the running worker took it back once the lease ran out, and dialled it
        for _ in range(2400):
            if s.get(cb).status == "done":
                break
            assert w2.poll() is None
            time.sleep(0.05)
        w2.send_signal(signal.SIGTERM)
        assert w2.wait(timeout=60) == 0
    finally:
        for p in (w1, w2):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    after = s.get(cb)
    assert (after.attempts, after.last_result) == (1, "answered")  # the interrupted attempt was not counted
    assert [line for line in log.read_text().splitlines() if not line.startswith("ready")] == [f"{cb} w1", f"{cb} w2"]
