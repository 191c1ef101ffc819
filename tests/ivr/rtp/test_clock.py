import asyncio
import logging
import time

import pytest

from ivr.lograte import suppressed_lines
from ivr.rtp.clock import MediaClock


def test_one_clock_ticks_every_subscriber_and_stops_when_empty(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        clock = MediaClock(interval=0.005)
        seen: dict[str, int] = {"a": 0, "b": 0}

        def bump(key: str) -> None:
            seen[key] += 1
            if seen[key] == 10:
                clock.unsubscribe(hash(key))

        def broken() -> None:
            raise RuntimeError("a session bug")

        clock.subscribe(hash("a"), lambda: bump("a"))
        clock.subscribe(hash("b"), lambda: bump("b"))
        clock.subscribe(99, broken)  # one failing session does not stop the others
        while clock.running and len(clock) > 1:
            await asyncio.sleep(0.01)
        clock.unsubscribe(99)
        assert seen == {"a": 10, "b": 10}
        assert not clock.running and clock.ticks >= 10
        assert len(clock.lateness) == len(clock.durations) == clock.ticks

    held = suppressed_lines["ivr.rtp.clock"]
    with caplog.at_level(logging.ERROR, logger="ivr.rtp.clock"):
        asyncio.run(main())
    failed = [r for r in caplog.records if r.getMessage().startswith("media tick failed: a session bug")]
    assert len(failed) == 1 and failed[0].exc_info is not None  # one traceback, not one per tick
    assert suppressed_lines["ivr.rtp.clock"] - held >= 9


def test_a_blocked_loop_is_counted_as_a_stall_and_the_ticks_it_skipped() -> None:
    async def main() -> MediaClock:
        clock = MediaClock(interval=0.01)
        ticks: list[int] = []
        clock.subscribe(1, lambda: ticks.append(clock.ticks))
        while len(ticks) < 3:
            await asyncio.sleep(0.005)
        time.sleep(0.2)  # something blocks the event loop for 20 ticks
        while len(ticks) < 6:
            await asyncio.sleep(0.005)
        clock.unsubscribe(1)
        return clock

    clock = asyncio.run(main())
    assert clock.stalls >= 1 and clock.late_ticks >= 1
    assert clock.missed_ticks >= 15  # skipped, not sent in a burst
    assert clock.max_lateness >= 0.15
