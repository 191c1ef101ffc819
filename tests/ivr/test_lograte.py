"""RateLimitedLog: one line per key per interval, counts of the lines held back, bounded keys."""
from __future__ import annotations

import logging

import pytest

from ivr.lograte import RateLimitedLog, suppressed_lines


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    out = [r.getMessage() for r in caplog.records]
    caplog.clear()
    return out


def test_one_line_per_key_per_interval_with_counts(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    limited = RateLimitedLog(logging.getLogger("t.rate"), 10.0, clock=clock)
    before = suppressed_lines["t.rate"]
    caplog.set_level(logging.INFO, logger="t.rate")
    assert [limited("a", logging.INFO, "refused %s", n) for n in range(5)] == [True] + [False] * 4
    assert limited("b", logging.INFO, "other %s", 1)
    assert lines(caplog) == ["refused 0", "other 1"]
    clock.now += 10.0
    limited("a", logging.INFO, "refused %s", 5)  # resumes with the count of what was held back
    limited("a", logging.INFO, "refused %s", 6)
    assert lines(caplog) == ["refused 5 (4 more like this)"]
    assert suppressed_lines["t.rate"] - before == 5


def test_flush_reports_a_key_gone_quiet_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    limited = RateLimitedLog(logging.getLogger("t.flush"), 10.0, clock=clock)
    caplog.set_level(logging.INFO, logger="t.flush")
    for n in range(4):
        limited("a", logging.WARNING, "dropped %d", n)
    limited.flush()  # too early: nothing yet
    assert lines(caplog) == ["dropped 0"]
    clock.now += 10.0
    limited.flush()
    assert lines(caplog) == ["dropped 3 (2 more like this)"]
    limited("a", logging.WARNING, "dropped %d", 4)  # within the interval of the flushed line: held
    clock.now += 10.0
    limited.flush()
    clock.now += 10.0
    limited.flush()  # quiet: forgotten, nothing more to say
    limited("a", logging.WARNING, "dropped %d", 5)
    assert lines(caplog) == ["dropped 4", "dropped 5"]


def test_keys_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    limited = RateLimitedLog(logging.getLogger("t.keys"), 10.0, max_keys=3, clock=clock)
    caplog.set_level(logging.INFO, logger="t.keys")
    for source in range(1000):  # a flood from spoofed addresses
        limited(("dropped", source), logging.WARNING, "dropped from %d", source)
    assert lines(caplog) == ["dropped from 0", "dropped from 1", "dropped from 2"]
    clock.now += 10.0
    limited.flush()
    assert lines(caplog) == ["997 more lines held back (more than 3 kinds at once)"]
    assert limited(("dropped", 5000), logging.WARNING, "dropped from %d", 5000)


def test_disabled_level_is_neither_logged_nor_counted(caplog: pytest.LogCaptureFixture) -> None:
    limited = RateLimitedLog(logging.getLogger("t.off"), clock=Clock())
    caplog.set_level(logging.WARNING, logger="t.off")
    before = suppressed_lines["t.off"]
    assert not any(limited("a", logging.INFO, "x") for _ in range(3))
    assert lines(caplog) == [] and suppressed_lines["t.off"] == before
