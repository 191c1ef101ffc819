"""Mutated torture messages fed to a live UAS (and random datagrams to an RTP session): nothing escapes."""
from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings, strategies as st
from sipclient import ToneHandler
from test_fuzz import mutated

from ivr.rtp.clock import MediaClock
from ivr.rtp.packet import RtpError, RtpPacket
from ivr.rtp.session import MediaParams, PortAllocator, RtpSession
from ivr.sip.endpoint import SipServerConfig
from ivr.sip.transaction import SipTimers
from ivr.sip.uas import SipServer


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated(), min_size=1, max_size=20))
def test_server_survives_mutated_messages(batch: list[bytes]) -> None:
    async def main() -> None:
        cfg = SipServerConfig(host="127.0.0.1", port=0, rtp_port_min=45700, rtp_port_max=45799,
                              timers=SipTimers(t1=0.01, t2=0.08, t4=0.02))
        server = SipServer(cfg, ToneHandler(frames=2))
        await server.start()
        for data in batch:
            server.datagram_received(data, ("127.0.0.1", 9))
        await asyncio.sleep(0.05)
        assert server.counters.get("internal_errors", 0) == 0
        await server.stop()
        assert not any(v for k, v in server.resources().items() if k != "server_transactions")

    asyncio.run(main())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_rtp_parse_raises_only_its_error(data: bytes) -> None:
    try:
        pkt = RtpPacket.parse(data)
    except RtpError:
        return
    assert bytes(pkt) == data or data[0] & 0x10  # an extension keeps its length in words


def test_rtp_session_ignores_garbage() -> None:
    async def main() -> None:
        session = RtpSession(MediaClock(), PortAllocator(45800, 45899),
                             MediaParams("PCMU", 0, 101, ("127.0.0.1", 9), True))
        for data in (b"", b"\x80", b"\x80\x00" + bytes(10), b"\x80\x65" + bytes(10) + b"\x01", b"\xff" * 40,
                     b"\x80\xc8" + bytes(30), b"\x8f" + bytes(20), b"\xa0" + bytes(11) + b"\x09"):
            session._received(data, ("127.0.0.1", 5))
        assert session.stats.dropped_invalid >= 4 and session.jitter.stats.received <= 1

    asyncio.run(main())
