"""SipChannel over a real RTP session on loopback (no SIP): lock-step exchange, keys, hang-up semantics."""
from __future__ import annotations

import asyncio
import socket
import struct

import numpy as np
import pytest

from ivr.channel.base import CallerHungUp, CallInfo
from ivr.channel.sip import SipChannel
from ivr.codecs.g711 import ulaw_decode, ulaw_encode
from ivr.dtmf.rfc4733 import TelephoneEvent
from ivr.rtp.clock import MediaClock
from ivr.rtp.session import MediaParams, PortAllocator, RtpSession


def test_exchange_hangup_and_keys() -> None:
    async def main() -> None:
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        peer.setblocking(False)
        session = RtpSession(MediaClock(), PortAllocator(45500, 45599),
                             MediaParams("PCMU", 0, 101, peer.getsockname(), True))
        await session.open("127.0.0.1")
        hangups: list[int] = []

        async def hangup_cb() -> None:
            hangups.append(1)

        ch = SipChannel(CallInfo("c1", "13800138000"), session, hangup_cb, inband_dtmf=False)
        ramp = [np.full(160, 100 * (k + 1), dtype="<i2").tobytes() for k in range(5)]
        with pytest.raises(ValueError, match="^a frame is 320 bytes of PCM16, got 3$"):
            await ch.exchange(b"abc")
        dest = ("127.0.0.1", session.local_port)
        t_ms = []
        for k in range(5):
            peer.sendto(struct.pack("!BBHII", 0x80, 0, k, 160 * k, 7) + ulaw_encode(ramp[k]), dest)
            inbound = await ch.exchange(ramp[k])
            t_ms.append(inbound.t_ms)
        peer.sendto(struct.pack("!BBHII", 0x80, 101, 9, 4000, 7) + bytes(TelephoneEvent(3)), dest)
        digits: list[str] = []
        heard: list[bytes] = []
        for _ in range(10):
            inbound = await ch.exchange(None)
            digits.extend(inbound.digits)
            heard.append(inbound.audio)
        assert t_ms == [0, 20, 40, 60, 80]
        assert digits == ["3"]
        assert any(np.frombuffer(a, "<i2").max() >= 100 for a in heard)  # the caller's frames came out of the buffer
        sent = []
        while True:
            try:
                sent.append(peer.recv(2048))
            except BlockingIOError:
                break
        levels = [int(np.frombuffer(ulaw_decode(p[12:]), "<i2")[0]) for p in sent]
        assert levels[:5] == [int(np.frombuffer(ulaw_decode(ulaw_encode(r)), "<i2")[0]) for r in ramp]
        assert set(levels[5:]) == {0}  # silence while the runner had nothing to play
        assert sent[0][1] & 0x80 and not any(p[1] & 0x80 for p in sent[1:])
        ch.mark_hung_up()
        with pytest.raises(CallerHungUp):
            await ch.exchange(None)
        await ch.hangup()
        assert hangups == []  # the caller already hung up: nothing to send
        session.close()
        assert session.ports.in_use == set()
        peer.close()

    asyncio.run(main())


def test_hangup_wakes_a_pending_exchange_and_is_idempotent() -> None:
    async def main() -> None:
        session = RtpSession(MediaClock(interval=3600), PortAllocator(45600, 45699),
                             MediaParams("PCMA", 8, None, ("127.0.0.1", 9), True))
        await session.open("127.0.0.1")
        calls: list[int] = []

        async def hangup_cb() -> None:
            calls.append(1)

        ch = SipChannel(CallInfo("c2", "x"), session, hangup_cb, inband_dtmf=True)
        assert ch.inband_dtmf
        pending = asyncio.create_task(ch.exchange(None))  # the clock never ticks: this waits
        await asyncio.sleep(0.05)
        assert not pending.done()
        await ch.hangup()
        await ch.hangup()
        with pytest.raises(CallerHungUp):
            await pending
        assert calls == [1]
        session.close()

    asyncio.run(main())
