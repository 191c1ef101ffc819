"""Faults a PBX must take in its stride, driven by SIPp over loopback: calls torn down during set-up, nonsense
connection addresses, SDP with leading whitespace, merged and tagless repeated INVITEs, RTP from two ports."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import numpy as np
import pytest
from sipclient import Dialog, ToneHandler, header, open_peer
from sippkit import (PCMU_EVENTS, SHARE, SIPP, caller_bye, finish, invite_answered, pause, play, recv, request,
                     rtpmaps, run_sipp, scenario, sdp, start)

from ivr.channel.base import CallerHungUp
from ivr.codecs.g711 import ulaw_encode
from ivr.sip.protection import ProtectionConfig

pytestmark = [pytest.mark.sipp, pytest.mark.skipif(SIPP is None, reason="sipp is not installed (apt-get install sip-tester)")]

#: SIPp sends faster than the shipped per-source INVITE limit; these tests are about what happens after it
UNLIMITED = ProtectionConfig(invite_rate=10000.0, invite_burst=10000)


def logged(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[str]:
    """Every record at `level` or above, with its traceback."""
    fmt = logging.Formatter("%(levelname)s %(name)s %(message)s")
    return [fmt.format(r) for r in caplog.records if r.levelno >= level]


def test_invite_cancelled_at_once_leaves_no_bad_file_descriptor(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """A CANCEL right behind the INVITE ends the call while its RTP endpoint is being created (PROTOS runs do this
    for every case): the socket must not be closed under the transport being made."""
    caplog.set_level(logging.INFO)

    async def main() -> None:
        server = await start(ToneHandler(), ring_seconds=30, protection=UNLIMITED)
        invite = request("INVITE", 1, sdp(*PCMU_EVENTS).replace("{v}", "1"), retrans=False)
        cancel = request("CANCEL", 1, retrans=False).replace("[branch]", "[branch-1]")
        ack = request("ACK", 1, in_dialog=True, retrans=False).replace("[branch]", "[branch-6]")  # the INVITE's
        xml = scenario("cancel-at-once", invite, cancel, recv(100, optional=True), recv(180, optional=True),
                       recv(200), recv(487), ack, pause(100))
        rc, out = await run_sipp(xml, tmp_path, server.port, calls=120, rate=200, limit=30,
                                 extra=["-default_behaviors", "pingreply"])  # the 100 may cross the CANCEL
        assert rc == 0, out
        assert len(server.ended_calls) == 120
        assert {reason for _, reason in server.ended_calls} == {"caller cancelled"}
        assert not any((await finish(server)).values())

    asyncio.run(main())
    assert [line for line in logged(caplog) if "Bad file descriptor" in line or "Errno" in line] == []
    assert logged(caplog, logging.ERROR) == []


#: c= values of the PROTOS c07-sip kind (case 3690 and its neighbours), and the warn-code each 488 must carry
GARBAGE_CONNECTIONS: list[tuple[bytes, int]] = [
    (b"IN IP4 %s%s%s%s%n%n%n%x%x%x", 301),
    (b"IN IP4 " + b"A" * 7000, 301),  # 8 KB: the whole INVITE must stay under the 8 KB message cap
    ("IN IP4 北京市朝阳区".encode(), 301),
    (b"IN IP4 \xff\xfe\xfd\xc3\x28", 301),
    (b"IN IP4 hotline.example.org", 301),  # a host name: never resolved
    (b"IN IP4 999.1.1.1", 301),
    (b"IN IP4 1.2.3.4.5", 301),
    (b"IN IP4 224.2.1.1/127", 330),
    (b"IN IP6 ::1", 301),  # our media is IPv4
    (b"IN IP4", 301),
    (b"IN XX IP4 127.0.0.1", 301),
]


def test_nonsense_connection_addresses_get_488_and_a_concurrent_call_is_unaffected(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    garbage_dir, good_dir = tmp_path / "garbage", tmp_path / "good"
    garbage_dir.mkdir(), good_dir.mkdir()
    csv = garbage_dir / "connections.csv"
    csv.write_bytes(b"SEQUENTIAL\n" + b"".join(c + b";\n" for c, _ in GARBAGE_CONNECTIONS))
    invite = request("INVITE", 1, sdp(*PCMU_EVENTS).replace("{v}", "1").replace(
        "c=IN IP[media_ip_type] [media_ip]", "c=[field0]"))
    check = ('  <recv response="488"><action><ereg regexp="^ *(301|330) - &quot;the conn" search_in="hdr" '
             'header="Warning:" check_it="true" assign_to="w"/></action></recv>\n')
    ack = request("ACK", 1, in_dialog=True, retrans=False, extra="X-Checked: [$w]").replace("[branch]", "[branch-2]")
    garbage = scenario("garbage-c", invite, recv(100, optional=True), check, ack)
    good = scenario("good", invite_answered(PCMU_EVENTS), *(play(SHARE / f"dtmf_2833_{k}.pcap", 400) for k in "123"),
                    caller_bye(2))

    async def main() -> None:
        handler = ToneHandler(frames=0, hang_up=False)
        server = await start(handler)
        good_call = asyncio.ensure_future(run_sipp(good, good_dir, server.port))
        rc, out = await run_sipp(garbage, garbage_dir, server.port, calls=len(GARBAGE_CONNECTIONS), rate=10,
                                 extra=["-inf", str(csv)])
        assert rc == 0, out
        sip = await open_peer()  # NULs cannot travel in a SIPp scenario: a scripted caller sends them
        d = Dialog(sip, ("127.0.0.1", server.port), rtp_port=40000)
        d.send(d.request("INVITE", d.offer().replace("c=IN IP4 127.0.0.1", "c=IN IP4 \x00\x00\x00\x00127.0.0.1")))
        refused = await sip.expect(r"SIP/2.0 [2-6]")
        assert refused.startswith("SIP/2.0 488 Not Acceptable Here\r\n")
        assert header(refused, "Warning") == (
            '301 - "the connection address is not an IP address (host names are not resolved)"')
        d.send(d.request("ACK", cseq=1, branch=d.branch))
        rc, out = await good_call
        assert rc == 0, out
        await asyncio.wait_for(handler.done.wait(), 30)
        assert handler.digits == ["1", "2", "3"] and handler.caller_hung_up == 1
        assert server.ended_calls == [(server.ended_calls[0][0], "caller hung up")]
        assert server.counters["invite_488"] == len(GARBAGE_CONNECTIONS) + 1
        assert server.counters.get("internal_errors", 0) == 0
        assert not any((await finish(server)).values())

    asyncio.run(main())
    assert logged(caplog) == []


def _answer_has(regexp: str, var: str) -> str:
    return (f'  <recv response="200"><action><ereg regexp="{regexp}" search_in="body" check_it="true" '
            f'assign_to="{var}"/></action></recv>\n')


def test_indented_sdp_line_and_an_invite_repeated_without_to_tag(tmp_path: Path) -> None:
    """What FreeSWITCH's own uac_telephone_event SIPp test does (our scenario, written after it): its offer has a
    line indented with a tab and spaces, which sofia-sip skips; then it sends a second INVITE without SDP, without
    To tag and with CSeq 2, which sofia-sip matches to the dialog: the 200 offers again, the ACK answers, the call
    goes on, keys still work, BYE ends it."""
    offer = sdp("8 0 18 101", rtpmaps("rtpmap:8 PCMA/8000", "rtpmap:0 PCMU/8000", "rtpmap:18 G729/8000",
                                      "fmtp:18 annexb=no", "rtpmap:101 telephone-event/8000")
                + "\t  a=fmtp:101 0-11,16\n").replace("{v}", "1")
    answer = sdp("8 0 101", rtpmaps("rtpmap:8 PCMA/8000", "rtpmap:0 PCMU/8000", "rtpmap:101 telephone-event/8000",
                                    "fmtp:101 0-15")).replace("{v}", "2")
    xml = scenario(
        "tagless-reinvite",
        request("INVITE", 1, offer), recv(100, optional=True), recv(180, optional=True),
        _answer_has("RTP/AVP 8 101[^0-9]", "a1"),
        request("ACK", 1, in_dialog=True, retrans=False, extra="X-Checked: [$a1]"), pause(500),
        request("INVITE", 2), recv(100, optional=True), _answer_has("RTP/AVP 8 101[^0-9]", "a2"),
        request("ACK", 2, answer, in_dialog=True, retrans=False, extra="X-Checked: [$a2]"),
        play(SHARE / "dtmf_2833_7.pcap", 600), caller_bye(3))

    async def main() -> None:
        handler = ToneHandler(frames=0, hang_up=False)
        server = await start(handler)
        seen: list[bytes] = []
        received = server.datagram_received
        server.datagram_received = lambda data, addr: (seen.append(data), received(data, addr))  # type: ignore
        rc, out = await run_sipp(xml, tmp_path, server.port)
        assert rc == 0, out
        assert any(b"\r\n  a=fmtp:101 0-11,16\r\n" in d for d in seen)  # SIPp kept the indentation
        assert sum(d.startswith(b"INVITE ") and b"\r\nTo: " in d and b";tag=" not in d.split(b"\r\nTo: ")[1]
                   .split(b"\r\n")[0] for d in seen) == 2
        await asyncio.wait_for(handler.done.wait(), 30)
        assert len(handler.channels) == 1 and handler.channels[0].info.extra["codec"] == "PCMA"
        assert handler.digits == ["7"] and handler.caller_hung_up == 1
        assert [reason for _, reason in server.ended_calls] == ["caller hung up"]
        assert "invite_482" not in server.counters and "invite_400" not in server.counters
        assert not any((await finish(server)).values())

    asyncio.run(main())


def test_merged_request_gets_482_loop_detected_and_the_first_invite_goes_on(tmp_path: Path) -> None:
    """The same INVITE (From tag, Call-ID, CSeq) on a second branch while the first is ringing: forked upstream
    and merged here (RFC 3261 8.2.2.2)."""
    offer = sdp(*PCMU_EVENTS).replace("{v}", "1")
    xml = scenario(
        "merged",
        request("INVITE", 1, offer, retrans=False), request("INVITE", 1, offer, retrans=False),
        recv(100, optional=True), recv(180, optional=True), recv(482),
        request("ACK", 1, retrans=False).replace("[branch]", "[branch-4]"),  # the 482's ACK: the second INVITE's
        recv(180, optional=True), _answer_has("m=audio", "a"),
        request("ACK", 1, in_dialog=True, retrans=False, extra="X-Checked: [$a]"), pause(300), caller_bye(2))

    async def main() -> None:
        handler = ToneHandler(frames=0, hang_up=False)
        server = await start(handler, ring_seconds=0.3)
        seen: list[bytes] = []
        received = server._send
        server._send = lambda data, addr: (seen.append(data), received(data, addr))  # type: ignore
        rc, out = await run_sipp(xml, tmp_path, server.port, extra=["-default_behaviors", "pingreply"])
        assert rc == 0, out
        await asyncio.wait_for(handler.done.wait(), 30)
        assert {d.split(b"\r\n")[0] for d in seen if d.startswith(b"SIP/2.0 482")} == {b"SIP/2.0 482 Loop Detected"}
        assert len(handler.channels) == 1 and handler.caller_hung_up == 1
        assert server.counters["invite_482"] == 1
        assert not any((await finish(server)).values())

    asyncio.run(main())


def test_audio_from_one_port_and_keys_from_the_sdp_port_in_concurrent_calls(tmp_path: Path) -> None:
    """SIPp's rtp_stream sends audio from its media port (-mp) while the SDP names [media_port+2], from which it
    plays the RFC 2833 keys: both sources are the caller's (the latched one and the SDP's)."""
    calls = 20
    heard: dict[str, list[bytes]] = {}
    keys: dict[str, list[str]] = {}

    async def handler(channel) -> None:  # type: ignore[no-untyped-def]
        audio, digits = heard.setdefault(channel.info.call_id, []), keys.setdefault(channel.info.call_id, [])
        with contextlib.suppress(CallerHungUp):
            while True:
                inbound = await channel.exchange(None)
                audio.append(inbound.audio)
                digits.extend(inbound.digits)

    t = np.arange(8000 * 3) / 8000
    (tmp_path / "tone.ulaw").write_bytes(ulaw_encode((4000 * np.sin(2 * np.pi * 400 * t)).astype("<i2").tobytes()))
    stream = f'  <nop><action><exec rtp_stream="{tmp_path / "tone.ulaw"},-1,0"/></action></nop>\n'
    invite = invite_answered(PCMU_EVENTS).replace("m=audio [media_port]", "m=audio [media_port+2]")
    keys_played = (play(SHARE / f"dtmf_2833_{k}.pcap", 400) for k in "123")
    xml = scenario("two-sources", invite, stream, pause(300), *keys_played, caller_bye(2))

    async def main() -> None:
        server = await start(handler)
        rc, out = await run_sipp(xml, tmp_path, server.port, calls=calls, rate=20, limit=calls)
        assert rc == 0, out
        assert not any((await finish(server)).values())

    asyncio.run(main())
    assert len(keys) == calls
    assert [k for k in keys.values() if k != ["1", "2", "3"]] == []
    loud = [sum(np.abs(np.frombuffer(f, "<i2")).max() > 1000 for f in frames) for frames in heard.values()]
    assert min(loud) > 40  # the tone from the other port is heard in every call
