"""RtpSession.send_digit: RFC 4733 events on the wire in place of audio, read back by our own receiver."""
from __future__ import annotations

import asyncio
import socket
import struct

from ivr.dtmf.rfc4733 import DtmfReceiver, TelephoneEvent
from ivr.rtp.clock import MediaClock
from ivr.rtp.session import MediaParams, PortAllocator, RtpSession


def test_a_key_is_sent_as_rfc4733_events_then_audio_resumes() -> None:
    async def main() -> list[bytes]:
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        peer.setblocking(False)
        session = RtpSession(MediaClock(), PortAllocator(46600, 46699),
                             MediaParams("PCMU", 0, 101, peer.getsockname(), True))
        await session.open("127.0.0.1")
        assert session.send_digit("5", duration_ms=60)
        while session.stats.sent < 8:
            await asyncio.sleep(0.02)
        session.close()
        packets = []
        while True:
            try:
                packets.append(peer.recv(2048))
            except BlockingIOError:
                peer.close()
                return packets

    packets = asyncio.run(main())
    heads = [struct.unpack_from("!BBHII", p) for p in packets]
    pts = [b1 & 0x7F for _, b1, _, _, _ in heads]
    assert pts[:5] == [101] * 5 and set(pts[5:]) == {0}  # 2 updates + the end packet 3 times, then PCMU
    events = [TelephoneEvent.parse(p[12:]) for p in packets[:5]]
    assert [(e.event, e.end, e.duration) for e in events] == [
        (5, False, 160), (5, False, 320), (5, True, 480), (5, True, 480), (5, True, 480)]
    assert len({ts for _, _, _, ts, _ in heads[:5]}) == 1  # one event, one timestamp
    assert [bool(b1 & 0x80) for _, b1, _, _, _ in heads[:6]] == [True, False, False, False, False, False]
    seqs = [seq for _, _, seq, _, _ in heads]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:]))
    receiver = DtmfReceiver()
    presses = [receiver.feed(h[4], h[3], p[12:], 0.0) for h, p in zip(heads[:5], packets[:5])]
    assert [k.digit for k in presses if k is not None] == ["5"]


def test_no_telephone_event_no_digit() -> None:
    session = RtpSession(MediaClock(), PortAllocator(46700, 46799), MediaParams("PCMA", 8, None, ("127.0.0.1", 9)))
    assert session.send_digit("1") is False
