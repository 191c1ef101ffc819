"""RtpSession over real loopback sockets: failed sends, the no-RTP time-out, and who may send a call its audio."""
from __future__ import annotations

import asyncio
import logging
import socket

import pytest
from sipclient import rtp

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


def _udp(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


def _drain(sock: socket.socket) -> int:
    n = 0
    while True:
        try:
            sock.recv(2048)
            n += 1
        except BlockingIOError:
            return n


def test_a_stranger_cannot_hijack_a_call_and_a_moved_caller_is_followed() -> None:
    """Over loopback with the real media clock: the caller sends from a port not in its SDP (NAT), a stranger
    injects a trickle and a burst; then the caller's stream moves to another port and is followed."""
    async def main() -> None:
        caller, stranger, moved, sdp_port = _udp(), _udp(), _udp(), _udp()
        session = RtpSession(MediaClock(), PortAllocator(46900, 46999),
                             MediaParams("PCMU", 0, 101, sdp_port.getsockname()))
        await session.open("127.0.0.1")
        ours = ("127.0.0.1", session.local_port)
        seq = 100
        for i in range(60):
            caller.sendto(rtp(0, seq, 160 * seq, 0xCA11, b"\xff" * 160), ours)
            seq += 1
            if i % 10 == 5:
                stranger.sendto(rtp(0, 7000 + i, 0, 0xBAD, b"\x00" * 160), ours)
            if i == 30:
                for k in range(50):
                    stranger.sendto(rtp(0, 8000 + k, 160 * k, 0xBAD, b"\x00" * 160), ours)
            await asyncio.sleep(0.02)
        assert session.latched == caller.getsockname() and session.stats.dropped_foreign == 56
        assert _drain(caller) > 20 and _drain(stranger) == 0  # we send to the caller only
        for _ in range(500):  # the caller's NAT binding moves: same stream from another port
            moved.sendto(rtp(0, seq, 160 * seq, 0xCA11, b"\xff" * 160), ours)
            seq += 1
            await asyncio.sleep(0.02)
            if session.latched == moved.getsockname():
                break
        assert session.latched == moved.getsockname() and session.source.moves == 1
        await asyncio.sleep(0.2)
        _drain(caller)
        await asyncio.sleep(0.2)
        assert _drain(moved) > 5 and _drain(caller) == 0
        session.close()
        for sock in (caller, stranger, moved, sdp_port):
            sock.close()

    asyncio.run(main())


def test_keys_pressed_while_nobody_reads_outlive_the_audio_dropped_for_room() -> None:
    """A call whose flow starts late (its node stalled 2 s after answering, seen in CI): the frames kept for it run
    over and the oldest audio goes, but a key the caller pressed meanwhile is still there for the first menu."""
    async def main() -> None:
        caller = _udp()
        session = RtpSession(MediaClock(), PortAllocator(47000, 47099), MediaParams("PCMU", 0, 101, caller.getsockname()))
        session.max_inbound = 10
        await session.open("127.0.0.1")
        ours = ("127.0.0.1", session.local_port)
        for seq, end in enumerate((False, False, True, True, True)):  # "5": start, update, the end sent three times
            event = bytes([5, (0x80 if end else 0) | 10]) + (160 * (seq + 1)).to_bytes(2, "big")
            caller.sendto(rtp(101, seq, 1600, 0xCA11, event), ours)
        for _ in range(500):
            await asyncio.sleep(0.02)
            if session.stats.dtmf_events == 1 and session.stats.inbound_overflow >= 30:
                break
        frames = list(session.inbound)
        session.close()
        caller.close()
        assert session.stats.dtmf_events == 1 and session.stats.inbound_overflow >= 30
        assert len(frames) == 10 and [d for f in frames for d in f.digits] == ["5"]

    asyncio.run(main())
