"""place_call against SIPp callees: answered with RTP both ways, far-end BYE, busy, unavailable, ring time-out."""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from ivr.channel.base import CallerHungUp
from ivr.rtp.clock import MediaClock
from ivr.rtp.session import PortAllocator
from ivr.sip.uac import OutboundCalls, place_call

HERE = Path(__file__).parent / "sipp"
pytestmark = [pytest.mark.sipp, pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed")]
T1 = 0.1


async def open_fds() -> int:
    """Open file descriptors, once closed transports have really let go of their sockets (and earlier tests'
    unreferenced database connections are collected, so they do not close during the count)."""
    await asyncio.sleep(0.05)
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def tone(freq: float, frames: int) -> list[bytes]:
    n = np.arange(160 * frames)
    pcm = (8000 * np.sin(2 * np.pi * freq * n / 8000)).astype("<i2")
    return [pcm[i * 160:(i + 1) * 160].tobytes() for i in range(frames)]


def dominant_hz(frames: list[bytes]) -> float:
    pcm = np.frombuffer(b"".join(frames), "<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    return float(np.argmax(spectrum) * 8000 / len(pcm))


def test_answered_call_carries_rtp_both_ways_then_we_hang_up(sipp, tmp_path: Path) -> None:
    proc, port = sipp(["-sf", str(HERE / "operator_echo.xml"), "-rtp_echo"], 1)
    ports = PortAllocator(46000, 46099)

    async def main() -> tuple[list[bytes], str]:
        await asyncio.sleep(0.3)  # sipp binding
        fds = await open_fds()
        res = await place_call(f"sip:8001@127.0.0.1:{port}", ("127.0.0.1", port), ports=ports, clock=MediaClock(),
                               t1=T1, display="hotline")
        assert (res.outcome, res.status) == ("answered", 200)
        assert res.channel is not None and ports.in_use == {res.channel.session.local_port}
        assert res.channel.info.extra["codec"] == "PCMU" and not res.channel.inband_dtmf
        heard = []
        for frame in tone(440, 75) + [None] * 25:  # type: ignore[list-item]
            heard.append((await res.channel.exchange(frame)).audio)
        await res.channel.hangup()
        await res.channel.hangup()  # idempotent
        assert ports.in_use == set() and await open_fds() == fds
        with pytest.raises(CallerHungUp):
            await res.channel.exchange(None)
        return heard, res.call_id

    heard, call_id = asyncio.run(main())
    echoed = [f for f in heard if np.abs(np.frombuffer(f, "<i2")).max() > 1000]
    assert len(echoed) > 50  # our 1.5 s tone came back from the far end's RTP echo
    assert abs(dominant_hz(echoed) - 440) < 10
    assert proc.wait(timeout=30) == 0  # SIPp got our INVITE, ACK and BYE in order
    log = (tmp_path / f"msgs{port}.log").read_text()
    assert f"Call-ID: {call_id}" in log and "BYE sip:operator@127.0.0.1" in log
    assert 'From: "hotline" <sip:12345@127.0.0.1>' in log


def test_far_end_bye_raises_caller_hung_up_and_options_is_answered(sipp) -> None:
    proc, port = sipp(["-sf", str(HERE / "operator_hangs_up.xml"), "-rtp_echo"], 1)
    ports = PortAllocator(46100, 46199)

    async def main() -> int:
        await asyncio.sleep(0.3)
        fds = await open_fds()
        res = await place_call(f"sip:8002@127.0.0.1:{port}", ("127.0.0.1", port), ports=ports, t1=T1)
        assert res.channel is not None
        frames = 0
        with pytest.raises(CallerHungUp):
            while True:
                await res.channel.exchange(None)
                frames += 1
        await res.channel.hangup()  # nothing to send: the far end has gone
        assert ports.in_use == set() and await open_fds() == fds
        return frames

    frames = asyncio.run(main())
    assert frames > 100  # about 3 s of media before the operator hung up
    assert proc.wait(timeout=30) == 0  # SIPp's OPTIONS and BYE were answered 200


@pytest.mark.parametrize(("scenario", "outcome", "status"), [
    ("busy.xml", "busy", 486), ("unavailable.xml", "no_answer", 480), ("noanswer.xml", "no_answer", 487)])
def test_refused_and_unanswered_calls(sipp, scenario: str, outcome: str, status: int) -> None:
    proc, port = sipp(["-sf", str(HERE / scenario)], 1)
    ports = PortAllocator(46200, 46299)

    async def main() -> None:
        await asyncio.sleep(0.3)
        fds = await open_fds()
        res = await place_call(f"sip:8003@127.0.0.1:{port}", ("127.0.0.1", port), ports=ports, t1=T1,
                               ring_timeout_s=1.0)
        assert (res.outcome, res.status, res.channel) == (outcome, status, None)
        assert ports.in_use == set() and await open_fds() == fds

    asyncio.run(main())
    assert proc.wait(timeout=30) == 0  # the no-answer callee really got a CANCEL, and each final response an ACK


def test_nobody_there_is_no_answer_after_invite_retransmissions(tmp_path: Path) -> None:
    import socket

    async def main() -> int:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            silent.setblocking(False)
            res = await place_call("sip:8004@127.0.0.1", silent.getsockname(), ports=PortAllocator(46300, 46399),
                                   t1=0.02, ring_timeout_s=30.0)
            assert (res.outcome, res.status, res.channel) == ("no_answer", None, None)
            got = 0
            while True:
                try:
                    got += silent.recv(4096).startswith(b"INVITE ")
                except BlockingIOError:
                    return got

    assert asyncio.run(main()) == 7  # timer A: sent at 0, 1, 3, 7, 15, 31 and 63 T1; timer B at 64 T1


def test_retransmitted_200_is_acked_again() -> None:
    """A callee whose first ACK got lost retransmits its 200: each copy gets the same ACK (a raw UDP callee)."""
    import socket

    from ivr.sip.message import Request, parse_message
    from ivr.sip.screen import build_response

    async def main() -> list[bytes]:
        loop = asyncio.get_running_loop()
        callee = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        callee.bind(("127.0.0.1", 0))
        callee.setblocking(False)
        call = asyncio.ensure_future(place_call("sip:8005@127.0.0.1", callee.getsockname(), t1=0.05,
                                                ports=PortAllocator(46300, 46399)))
        data, addr = await loop.sock_recvfrom(callee, 4096)
        invite = parse_message(data)
        assert isinstance(invite, Request) and invite.method == "INVITE"
        sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 8\r\n"
        ok = bytes(build_response(invite, 200, to_tag="callee1", body=sdp, content_type="application/sdp",
                                  extra=[("Contact", f"<sip:8005@127.0.0.1:{callee.getsockname()[1]}>")]))
        acks = []
        for _ in range(2):
            callee.sendto(ok, addr)
            while True:
                got = (await loop.sock_recvfrom(callee, 4096))[0]
                if got.startswith(b"ACK "):
                    acks.append(got)
                    break
        res = await call
        assert res.outcome == "answered" and res.channel is not None and res.channel.info.extra["codec"] == "PCMA"
        hangup = asyncio.ensure_future(res.channel.hangup())
        while not (data := (await loop.sock_recvfrom(callee, 4096))[0]).startswith(b"BYE sip:8005@127.0.0.1:"):
            pass
        bye = parse_message(data)
        callee.sendto(bytes(build_response(bye, 200)), addr)
        await hangup
        callee.close()
        return acks

    acks = asyncio.run(main())
    assert acks[0] == acks[1] and b"To: <sip:8005@127.0.0.1>;tag=callee1" in acks[0]


def test_a_call_given_up_while_ringing_is_cancelled(sipp) -> None:
    proc, port = sipp(["-sf", str(HERE / "noanswer.xml")], 1)  # rings (180) until CANCELled, then 487
    ports = PortAllocator(46400, 46499)

    async def main() -> None:
        await asyncio.sleep(0.3)
        fds = await open_fds()
        calling = asyncio.ensure_future(place_call(f"sip:8005@127.0.0.1:{port}", ("127.0.0.1", port), ports=ports,
                                                   t1=T1, ring_timeout_s=30.0))
        await asyncio.sleep(1.0)
        calling.cancel()  # e.g. the waiting caller's task stopped with the server
        with pytest.raises(asyncio.CancelledError):
            await calling
        for _ in range(100):
            if proc.poll() is not None and not ports.in_use:
                break
            await asyncio.sleep(0.05)
        assert ports.in_use == set() and await open_fds() == fds

    asyncio.run(main())
    assert proc.wait(timeout=30) == 0  # the CANCEL came long before the 30 s ring time-out; the 487 was ACKed


def test_far_end_hold_and_resume_by_re_invite(sipp) -> None:
    proc, port = sipp(["-sf", str(HERE / "operator_holds.xml")], 1)

    async def main() -> list[bool]:
        await asyncio.sleep(0.3)
        res = await place_call(f"sip:8006@127.0.0.1:{port}", ("127.0.0.1", port), ports=PortAllocator(46500, 46599),
                               t1=T1)
        assert res.channel is not None
        sending = []
        with pytest.raises(CallerHungUp):
            while True:
                await res.channel.exchange(None)
                sending.append(res.channel.session.params.sending)
        return sending

    sending = asyncio.run(main())
    held = sending.index(False)
    assert all(sending[:held]) and True in sending[held:] and sending[-1] is not False  # held, then resumed
    assert proc.wait(timeout=30) == 0  # each re-INVITE got a 200 whose SDP answered recvonly, then sendrecv


def test_far_end_that_vanishes_is_hung_up_after_the_rtp_timeout(sipp, caplog: pytest.LogCaptureFixture) -> None:
    proc, port = sipp(["-sf", str(HERE / "operator_echo.xml"), "-rtp_echo"], 1)
    ports, calls = PortAllocator(46600, 46699), OutboundCalls()
    caplog.set_level(logging.INFO, logger="ivr.sip.uac")

    async def main() -> int:
        await asyncio.sleep(0.3)
        res = await place_call(f"sip:8007@127.0.0.1:{port}", ("127.0.0.1", port), ports=ports, t1=T1,
                               rtp_timeout_s=1.0, calls=calls)
        assert res.channel is not None and len(calls) == 1
        for frame in tone(440, 150):  # 3 s, three times the time-out: the echo keeps the call up
            await res.channel.exchange(frame)
        proc.kill()  # the operator's phone vanishes (no BYE)
        proc.wait()
        after = 0
        with pytest.raises(CallerHungUp):
            while after < 1500:  # 30 s of frames at most: the call must end long before
                await res.channel.exchange(None)
                after += 1
        for _ in range(400):  # the BYE to nobody runs out (timer F), then the socket and port are released
            if not ports.in_use and not calls:
                break
            await asyncio.sleep(0.05)
        assert ports.in_use == set() and len(calls) == 0
        return after

    assert asyncio.run(main()) >= 45  # about the 1 s (50 frames) time-out of silence after the far end went
    assert any(r.getMessage().endswith("no RTP from the far end for 1 s: hanging up") for r in caplog.records)


def test_hang_up_all_byes_the_calls_up_and_cancels_those_ringing(sipp) -> None:
    up, up_port = sipp(["-sf", str(HERE / "operator_echo.xml"), "-rtp_echo"], 1)  # answers, waits for our BYE
    ringing, ringing_port = sipp(["-sf", str(HERE / "noanswer.xml")], 1)  # rings until CANCELled
    ports, calls = PortAllocator(46700, 46799), OutboundCalls()

    async def main() -> None:
        await asyncio.sleep(0.3)
        res = await place_call(f"sip:8008@127.0.0.1:{up_port}", ("127.0.0.1", up_port), ports=ports, t1=T1,
                               calls=calls)
        assert res.channel is not None
        calling = asyncio.ensure_future(place_call(f"sip:8009@127.0.0.1:{ringing_port}", ("127.0.0.1", ringing_port),
                                                   ports=ports, t1=T1, ring_timeout_s=60.0, calls=calls))
        await asyncio.sleep(1.0)
        assert len(calls) == 2
        assert await calls.hang_up_all() == 2
        with pytest.raises(CallerHungUp):
            await res.channel.exchange(None)
        assert (await calling).outcome == "no_answer"
        assert ports.in_use == set() and len(calls) == 0

    asyncio.run(main())
    assert up.wait(timeout=30) == 0 and ringing.wait(timeout=30) == 0  # a BYE answered 200; a CANCEL, 487 ACKed
