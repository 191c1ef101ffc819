"""RtpSession over real loopback sockets: failed sends, the no-RTP time-out, and who may send a call its audio."""
from __future__ import annotations

import asyncio
import logging

import pytest

from ivr.rtp.clock import MediaClock
from ivr.rtp.session import MediaParams, PortAllocator, RtpSession


def test_a_remote_that_is_not_an_ip_literal_is_refused() -> None:
    """A name would be resolved by every sendto(), 50 times a second, and garbage would raise there."""
    for host in ("%s%s%n", "\x00\x00", "hotline.example.org", "北京"):
        with pytest.raises(ValueError, match="^the RTP remote host is not an IP address$"):
            MediaParams("PCMU", 0, None, (host, 4000))
    assert MediaParams("PCMU", 0, None, ("::1", 4000)).remote == ("::1", 4000)


def test_failing_sends_are_counted_logged_once_and_the_rx_timeout_still_fires(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ivr.rtp.session")

    async def main() -> RtpSession:
        timed_out = asyncio.Event()
        # a broadcast address without SO_BROADCAST: every sendto() fails with EACCES
        session = RtpSession(MediaClock(), PortAllocator(46800, 46899),
                             MediaParams("PCMU", 0, None, ("255.255.255.255", 4000)),
                             rx_timeout_ticks=25, on_rx_timeout=timed_out.set)
        await session.open("127.0.0.1")
        await asyncio.wait_for(timed_out.wait(), 30)
        session.close()
        return session

    session = asyncio.run(main())
    assert session.stats.sent == 0 and session.stats.send_errors >= 25
    lines = [r.getMessage() for r in caplog.records if r.name == "ivr.rtp.session"]
    assert lines == ["RTP send to 255.255.255.255:4000 failed: [Errno 13] Permission denied "
                     "(further failures of this call counted, not logged)"]
