"""Calls from SIPp (a real SIP client, Debian package sip-tester) to the UAS on loopback."""
from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from sipclient import ToneHandler, dominant_freq
from sippkit import (PCMA_ONLY, PCMU_EVENTS, PCMU_ONLY, SHARE, SIPP, answer_ok, caller_bye, finish, invite_answered,
                     pause, play, recv, request, run_sipp, scenario, sdp, start)

from ivr.codecs.g711 import ulaw_encode
from ivr.dtmf.inband import DBM0_AMPLITUDE, DtmfDetector
from ivr.rtp.pcap import UdpDatagram, write_udp
from sipclient import rtp

pytestmark = [pytest.mark.sipp, pytest.mark.skipif(SIPP is None, reason="sipp is not installed (apt-get install sip-tester)")]

class InbandHandler(ToneHandler):
    """ToneHandler that also runs the in-band detector when the call has no RFC 4733."""

    def __init__(self, **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kw)
        self.detector = DtmfDetector()
        self.inband_digits: list[str] = []
        self.flags: list[bool] = []

    async def __call__(self, channel) -> None:  # type: ignore[no-untyped-def]
        self.flags.append(channel.inband_dtmf)
        await super().__call__(channel)
        if channel.inband_dtmf:
            for frame in self.audio:
                self.inband_digits.extend(d.digit for d in self.detector.feed(frame))


def pcmu_pcap(path: Path, pcm: np.ndarray) -> Path:
    """A 20 ms PCMU RTP stream of `pcm` (float samples) as a pcap for SIPp's play_pcap_audio."""
    data = np.clip(np.round(pcm), -32768, 32767).astype("<i2").tobytes()
    items = []
    for k, i in enumerate(range(0, len(data) - 319, 320)):
        pkt = rtp(0, 100 + k, 8000 + 160 * k, 0x5EED, ulaw_encode(data[i : i + 320]), marker=k == 0)
        items.append(UdpDatagram(1000.0 + 0.02 * k, ("10.0.0.1", 6000), ("10.0.0.2", 7000), pkt))
    write_udp(path, items)
    return path


def sine(freq: float, ms: int, dbm0: float = -10.0) -> np.ndarray:
    n = np.arange(8 * ms)
    return DBM0_AMPLITUDE * 10 ** (dbm0 / 20) * np.sin(2 * np.pi * freq * n / 8000)


def test_pcmu_call_with_audio_and_rfc4733_keys(tmp_path: Path) -> None:
    async def main() -> None:
        handler = InbandHandler(frames=0, hang_up=False)
        server = await start(handler)
        tone = pcmu_pcap(tmp_path / "tone.pcap", sine(400, 1500))
        xml = scenario("pcmu", invite_answered(PCMU_EVENTS), play(tone, 1600),
                       play(SHARE / "dtmf_2833_1.pcap", 500), play(SHARE / "dtmf_2833_pound.pcap", 500),
                       play(SHARE / "dtmf_2833_1.pcap", 500), caller_bye(2))
        rc, out = await run_sipp(xml, tmp_path, server.port)
        assert rc == 0, out
        await asyncio.wait_for(handler.done.wait(), 30)
        assert handler.digits == ["1", "#", "1"]
        assert handler.flags == [False]
        voiced = [f for f in handler.audio if np.abs(np.frombuffer(f, "<i2")).max() > 500]
        assert len(voiced) > 50
        assert abs(dominant_freq(b"".join(voiced[5:45])) - 400) < 20
        assert handler.caller_hung_up == 1
        assert server.ended_calls[-1][1] == "caller hung up"
        assert not any((await finish(server)).values())

    asyncio.run(main())


def test_pcma_only_caller_with_sipp_capture(tmp_path: Path) -> None:
    async def main() -> None:
        handler = InbandHandler(frames=0, hang_up=False)
        server = await start(handler)
        xml = scenario("pcma", invite_answered(PCMA_ONLY), play(SHARE / "g711a.pcap", 2500), caller_bye(2))
        rc, out = await run_sipp(xml, tmp_path, server.port)
        assert rc == 0, out
        await asyncio.wait_for(handler.done.wait(), 30)
        assert handler.flags == [True]  # no telephone-event: keys only in-band
        assert handler.channels[0].info.extra["codec"] == "PCMA"
        loud = [f for f in handler.audio if np.abs(np.frombuffer(f, "<i2")).max() > 300]
        assert len(loud) > 25  # the capture's audio came through the A-law decoder and the jitter buffer
        assert not any((await finish(server)).values())

    asyncio.run(main())


def test_inband_keys_in_the_callers_audio(tmp_path: Path) -> None:
    async def main() -> None:
        handler = InbandHandler(frames=0, hang_up=False)
        server = await start(handler)
        gap = np.zeros(8 * 150)
        audio = np.concatenate([sine(400, 400), gap, sine(770, 120, -8) + sine(1209, 120, -8), gap,
                                sine(697, 120, -8) + sine(1336, 120, -8), gap, sine(941, 120, -8) + sine(1477, 120, -8),
                                gap])
        pcap = pcmu_pcap(tmp_path / "keys.pcap", audio)
        xml = scenario("inband", invite_answered(PCMU_ONLY), play(pcap, 1900), caller_bye(2))
        rc, out = await run_sipp(xml, tmp_path, server.port)
        assert rc == 0, out
        await asyncio.wait_for(handler.done.wait(), 30)
        assert handler.flags == [True] and handler.digits == []
        assert handler.inband_digits == ["4", "2", "#"]
        assert not any((await finish(server)).values())

    asyncio.run(main())


def test_cancel_while_ringing(tmp_path: Path) -> None:
    async def main() -> None:
        handler = ToneHandler()
        server = await start(handler, ring_seconds=30)
        invite = request("INVITE", 1, sdp(*PCMU_EVENTS).replace("{v}", "1"))
        cancel = request("CANCEL", 1).replace("[branch]", "[branch-4]")
        ack = request("ACK", 1, in_dialog=True, retrans=False).replace("[branch]", "[branch-7]")
        xml = scenario("cancel", invite, recv(100, optional=True), recv(180), pause(200), cancel, recv(200),
                       recv(487), ack, pause(300))
        rc, out = await run_sipp(xml, tmp_path, server.port)
        assert rc == 0, out
        assert handler.channels == []
        assert server.ended_calls[-1][1] == "caller cancelled"
        assert server.counters.get("retransmissions_absorbed", 0) == 0
        assert not any((await finish(server)).values())

    asyncio.run(main())


def test_caller_hangs_up_during_a_prompt(tmp_path: Path) -> None:
    async def main() -> None:
        handler = ToneHandler(frames=0, hang_up=False)
        server = await start(handler)
        rc, out = await run_sipp(scenario("bye", invite_answered(), pause(1200), caller_bye(2)), tmp_path, server.port)
        assert rc == 0, out
        await asyncio.wait_for(handler.done.wait(), 30)
        assert handler.caller_hung_up == 1 and len(handler.audio) > 20
        assert not any((await finish(server)).values())

    asyncio.run(main())


def test_ivr_hangs_up(tmp_path: Path) -> None:
    async def main() -> None:
        handler = ToneHandler(frames=60)
        server = await start(handler)
        xml = scenario("ivr-bye", invite_answered(), recv("BYE"), answer_ok(), pause(200))
        rc, out = await run_sipp(xml, tmp_path, server.port)
        assert rc == 0, out
        assert handler.caller_hung_up == 0 and len(handler.audio) == 60
        assert server.ended_calls[-1][1] == "IVR hung up"
        assert not any((await finish(server)).values())

    asyncio.run(main())


def _check_body(regexp: str, var: str) -> str:
    return (f'  <recv response="200"><action><ereg regexp="{regexp}" search_in="body" check_it="true" '
            f'assign_to="{var}"/></action></recv>\n')


def test_reinvite_hold_and_back(tmp_path: Path) -> None:
    async def main() -> None:
        handler = ToneHandler(frames=0, hang_up=False)
        server = await start(handler)
        hold = request("INVITE", 2, sdp(*PCMU_EVENTS, direction="sendonly").replace("{v}", "2"), in_dialog=True)
        back = request("INVITE", 3, sdp(*PCMU_EVENTS, direction="sendrecv").replace("{v}", "3"), in_dialog=True)
        xml = scenario(
            "hold", invite_answered(), pause(500),
            hold, recv(100, optional=True), _check_body("a=recvonly", "h"),
            request("ACK", 2, in_dialog=True, retrans=False, extra="X-Checked: [$h]"),
            pause(500),
            back, recv(100, optional=True), _check_body("a=sendrecv", "b"),
            request("ACK", 3, in_dialog=True, retrans=False, extra="X-Checked: [$b]"),
            pause(300), caller_bye(4))
        rc, out = await run_sipp(xml, tmp_path, server.port)
        assert rc == 0, out
        await asyncio.wait_for(handler.done.wait(), 30)
        assert handler.caller_hung_up == 1
        assert not any((await finish(server)).values())

    asyncio.run(main())
