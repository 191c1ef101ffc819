"""The UAS over real UDP sockets on loopback, driven by a scripted peer (sipclient.py)."""
from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import Awaitable, Callable

from sipclient import Dialog, ToneHandler, dominant_freq, header, open_peer, rtp, ulaw_tone
from sippkit import start

from ivr.codecs.g711 import ulaw_decode
from ivr.logs import mask_number
from ivr.sip.transaction import SipTimers
from ivr.sip.uas import SipServer

TIMERS = SipTimers(t1=0.02, t2=0.16, t4=0.05)


def run(coro: Awaitable[None]) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


async def serve(handler: Callable, **kw) -> SipServer:  # type: ignore[type-arg]
    return await start(handler, rtp_ports=(41000, 41999), timers=TIMERS, **kw)


async def idle(server: SipServer) -> dict[str, int]:
    """Wait until the server holds nothing (transactions linger 64*T1 by design) and return its resources."""
    for _ in range(400):
        res = server.resources()
        if not any(res.values()):
            return res
        await asyncio.sleep(0.05)
    return server.resources()


async def answer_call(d: Dialog, **offer: str) -> str:
    d.send(d.invite(**offer))
    await d.sip.expect(r"SIP/2.0 100 ")
    ok = await d.sip.expect(r"SIP/2.0 200 ")
    d.to_tag = re.search(r"^To:.*;tag=([^;\r]+)", ok, re.M).group(1)  # type: ignore[union-attr]
    return ok


def test_call_with_media_digits_and_ivr_hangup() -> None:
    async def main() -> None:
        handler = ToneHandler(frames=150)
        server = await serve(handler)
        sip, media = await open_peer(), await open_peer()
        decoy = await open_peer()  # the SDP names this port, but RTP really comes from `media`: latching
        d = Dialog(sip, ("127.0.0.1", server.port), rtp_port=decoy.port)
        invite = d.invite()
        d.send(invite)
        await sip.expect(r"SIP/2.0 100 Trying")
        ok = await sip.expect(r"SIP/2.0 200 OK")
        assert "a=sendrecv" in ok and "m=audio " in ok and "a=rtpmap:101 telephone-event/8000" in ok
        assert header(ok, "Content-Type") == "application/sdp"
        d.to_tag = re.search(r"^To:.*;tag=([^;\r]+)", ok, re.M).group(1)  # type: ignore[union-attr]
        assert re.search(rf"^Via: .*;rport={sip.port}", ok, re.M)
        again = await sip.expect(r"SIP/2.0 200 OK")  # retransmitted until the ACK
        assert again == ok
        d.send(invite)  # a retransmitted INVITE: absorbed by the transaction
        d.send(d.ack())
        assert len(server.calls) == 1
        server_rtp = int(re.search(r"m=audio (\d+)", ok).group(1))  # type: ignore[union-attr]
        # caller audio: 400 Hz in 20 ms packets, then keys 5 and # as RFC 4733 events (end sent 3 times)
        seq, ts, ssrc = 1000, 5000, 0x1234
        for i in range(40):
            media.send(rtp(0, seq, ts, ssrc, ulaw_tone(400, 160, i * 160)), ("127.0.0.1", server_rtp))
            seq, ts = seq + 1, ts + 160
            await asyncio.sleep(0.02)
        for code in (5, 11):
            for k in range(4):
                media.send(rtp(101, seq, ts, ssrc, struct.pack("!BBH", code, 10, 160 * k), marker=k == 0),
                           ("127.0.0.1", server_rtp))
                seq += 1
            for _ in range(3):
                media.send(rtp(101, seq, ts, ssrc, struct.pack("!BBH", code, 0x80 | 10, 800)),
                           ("127.0.0.1", server_rtp))
            seq, ts = seq + 1, ts + 1600
        bye = await sip.expect(r"BYE ")
        sip.send(_ok_for(bye), d.server)
        await handler.done.wait()
        assert handler.digits == ["5", "#"]
        heard = b"".join(handler.audio[10:40])
        assert abs(dominant_freq(heard) - 400) < 20
        assert handler.t_ms[:3] == [0, 20, 40]
        packets = [p for p in media.drain() if len(p) == 172]
        assert len(packets) > 50
        hdr = [struct.unpack("!BBHII", p[:12]) for p in packets]
        assert all(b1 & 0x7F == 0 for _, b1, _, _, _ in hdr)
        for (_, _, s1, t1, c1), (_, b2, s2, t2, c2) in zip(hdr, hdr[1:]):
            assert (s2 - s1) & 0xFFFF == 1 and (t2 - t1) & 0xFFFFFFFF == 160 and c1 == c2 and not b2 & 0x80
        tone = ulaw_decode(b"".join(p[12:] for p in packets[5:30]))
        assert abs(dominant_freq(tone) - 1000) < 20
        assert header(bye, "CSeq") == "1 BYE" and header(bye, "Call-ID") == d.call_id
        assert server.calls == {} and await idle(server) == dict.fromkeys(server.resources(), 0)
        await server.stop()

    run(main())


def _ok_for(req: str) -> str:
    lines = [line for line in req.split("\r\n") if re.match(r"(Via|From|To|Call-ID|CSeq):", line)]
    return "SIP/2.0 200 OK\r\n" + "\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n"


def test_caller_hangs_up_mid_prompt_and_nothing_is_left() -> None:
    async def main() -> None:
        handler = ToneHandler(frames=0, hang_up=False)
        server = await serve(handler)
        sip = await open_peer()
        d = Dialog(sip, ("127.0.0.1", server.port), rtp_port=(await open_peer()).port)
        await answer_call(d)
        d.send(d.ack())
        await asyncio.sleep(0.3)
        d.cseq += 1
        bye = d.request("BYE")
        d.send(bye)
        ok = await sip.expect(r"SIP/2.0 200 OK")
        assert header(ok, "CSeq") == "2 BYE"
        await handler.done.wait()
        assert handler.caller_hung_up == 1
        d.send(bye)  # retransmission: absorbed, same answer
        assert (await sip.expect(r"SIP/2.0 ")).startswith("SIP/2.0 200")
        res = await idle(server)
        assert not any(res.values()), res
        await server.stop()

    run(main())


def test_cancel_while_ringing() -> None:
    async def main() -> None:
        handler = ToneHandler()
        server = await serve(handler, ring_seconds=30)
        sip = await open_peer()
        d = Dialog(sip, ("127.0.0.1", server.port), rtp_port=(await open_peer()).port)
        invite = d.invite()
        invite_branch = d.branch
        d.send(invite)
        await sip.expect(r"SIP/2.0 180 Ringing")
        d.send(d.request("CANCEL", branch=invite_branch))
        first, second = await sip.expect(r"SIP/2.0 "), await sip.expect(r"SIP/2.0 ")
        assert sorted([first.split("\r\n")[0], second.split("\r\n")[0]]) == [
            "SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"]
        d.to_tag = re.search(r"^To:.*;tag=([^;\r]+)", first if "487" in first else second, re.M).group(1)  # type: ignore[union-attr]
        d.send(d.request("ACK", branch=invite_branch))
        assert server.calls == {}
        res = await idle(server)
        assert not any(res.values()), res
        assert handler.channels == []
        await server.stop()

    run(main())


def test_200_without_ack_is_retransmitted_then_the_call_is_ended_with_bye() -> None:
    async def main() -> None:
        server = await serve(ToneHandler())
        sip = await open_peer()
        d = Dialog(sip, ("127.0.0.1", server.port), rtp_port=(await open_peer()).port)
        await answer_call(d)
        oks = 1
        while True:
            text = await sip.expect(r"(SIP/2.0 200|BYE )")
            if text.startswith("BYE"):
                break
            oks += 1
        assert oks >= 6  # T1, 2T1, 4T1, T2, T2, ... within 64*T1
        sip.send(_ok_for(text), d.server)
        res = await idle(server)
        assert not any(res.values()), res
        await server.stop()

    run(main())


def test_call_limit_answers_503_with_retry_after_and_bad_offers_488() -> None:
    async def main() -> None:
        server = await serve(ToneHandler(frames=0, hang_up=False), max_calls=1, retry_after=7)
        sip = await open_peer()
        d1 = Dialog(sip, ("127.0.0.1", server.port), rtp_port=(await open_peer()).port)
        await answer_call(d1)
        d1.send(d1.ack())
        d2 = Dialog(sip, ("127.0.0.1", server.port), rtp_port=5000)
        d2.send(d2.invite())
        busy = await sip.expect(r"SIP/2.0 503 Service Unavailable")
        assert header(busy, "Retry-After") == "7"
        d2.send(d2.request("ACK", branch=d2.branch))
        d1.cseq += 1
        d1.send(d1.request("BYE"))
        await sip.expect(r"SIP/2.0 200 OK")
        d3 = Dialog(sip, ("127.0.0.1", server.port), rtp_port=5000)
        d3.send(d3.invite(fmts="18", codec_lines="a=rtpmap:18 G729/8000\r\n"))
        assert (await sip.expect(r"SIP/2.0 4")).startswith("SIP/2.0 488 Not Acceptable Here")
        d3.send(d3.request("OPTIONS"))
        opts = await sip.expect(r"SIP/2.0 200")
        assert header(opts, "Allow") == "INVITE, ACK, BYE, CANCEL, OPTIONS"
        assert header(opts, "Accept") == "application/sdp"
        d3.cseq += 1
        d3.send(d3.request("BYE"))
        assert (await sip.expect(r"SIP/2.0 ")).startswith("SIP/2.0 481")
        d3.send(d3.request("INFO"))
        assert (await sip.expect(r"SIP/2.0 ")).startswith("SIP/2.0 405")
        d3.send(d3.request("OPTIONS", extra="Require: 100rel\r\n"))
        bad = await sip.expect(r"SIP/2.0 ")
        assert bad.startswith("SIP/2.0 420") and header(bad, "Unsupported") == "100rel"
        assert not any((await idle(server)).values())
        await server.stop()

    run(main())


def test_reinvite_to_hold_and_back() -> None:
    async def main() -> None:
        handler = ToneHandler(frames=0, hang_up=False)
        server = await serve(handler)
        sip, media = await open_peer(), await open_peer()
        d = Dialog(sip, ("127.0.0.1", server.port), rtp_port=media.port)
        ok = await answer_call(d)
        d.send(d.ack())
        origin = re.search(r"o=- (\d+) (\d+) ", ok)
        await asyncio.sleep(0.3)
        assert len(media.drain()) > 5
        d.cseq += 1
        d.send(d.request("INVITE", d.offer(direction="sendonly")))
        hold = await sip.expect(r"SIP/2.0 200")
        assert "a=recvonly" in hold
        held_origin = re.search(r"o=- (\d+) (\d+) ", hold)
        assert held_origin.group(1) == origin.group(1)  # type: ignore[union-attr]
        assert int(held_origin.group(2)) == int(origin.group(2)) + 1  # type: ignore[union-attr]
        d.send(d.ack())
        await asyncio.sleep(0.1)
        media.drain()
        await asyncio.sleep(0.3)
        assert media.drain() == []  # on hold: we send nothing
        d.cseq += 1
        d.send(d.request("INVITE", d.offer(direction="sendrecv")))
        back = await sip.expect(r"SIP/2.0 200")
        assert "a=sendrecv" in back
        d.send(d.ack())
        first = await media.recv()
        assert first[1] & 0x80  # marker on the first packet after the hold
        assert handler.caller_hung_up == 0 and len(server.calls) == 1
        d.cseq += 1
        d.send(d.request("BYE"))
        await sip.expect(r"SIP/2.0 200")
        assert not any((await idle(server)).values())
        await server.stop()

    run(main())


def test_mask_number() -> None:
    # the UAS's own mask (first 3 and last 2 digits) is gone (issue 13: one mask, ivr.logs's: first 3 and last 4)
    assert mask_number("sip:13800138000@10.0.0.1") == "sip:138****8000@10.0.0.1"
    assert mask_number("sip:12345@x") == "sip:12345@x"


def test_reinvite_codec_change_and_session_refresh_without_sdp() -> None:
    async def main() -> None:
        server = await serve(ToneHandler(frames=0, hang_up=False))
        sip, media = await open_peer(), await open_peer()
        d = Dialog(sip, ("127.0.0.1", server.port), rtp_port=media.port)
        ok = await answer_call(d)
        d.send(d.ack())
        version = int(re.search(r"o=- \d+ (\d+) ", ok).group(1))  # type: ignore[union-attr]
        d.cseq += 1
        d.send(d.request("INVITE", d.offer(fmts="8 101", codec_lines=(
            "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"))))
        changed = await sip.expect(r"SIP/2.0 200")
        assert "m=audio" in changed and re.search(r"RTP/AVP 8 101\r\n", changed)
        assert int(re.search(r"o=- \d+ (\d+) ", changed).group(1)) == version + 1  # type: ignore[union-attr]
        d.send(d.ack())
        await asyncio.sleep(0.2)
        media.drain()
        pkt = await media.recv()
        assert pkt[1] & 0x7F == 8  # now sending PCMA
        d.cseq += 1
        d.send(d.request("INVITE"))  # session refresh without an offer: our current description, same version
        refresh = await sip.expect(r"SIP/2.0 200")
        assert refresh.split("\r\n\r\n", 1)[1] == changed.split("\r\n\r\n", 1)[1]
        d.send(d.ack())
        d.cseq -= 1
        d.send(d.request("INVITE", d.offer()))  # an older CSeq: refused
        assert (await sip.expect(r"SIP/2.0 [45]")).startswith("SIP/2.0 500")
        d.cseq += 2
        d.send(d.request("BYE"))
        await sip.expect(r"SIP/2.0 200 OK\r\n(?s:.*)CSeq: \d+ BYE")
        assert not any((await idle(server)).values())
        await server.stop()

    run(main())


def test_delayed_offer_answered_in_the_ack() -> None:
    async def main() -> None:
        handler = ToneHandler(frames=0, hang_up=False)
        server = await serve(handler)
        sip, media = await open_peer(), await open_peer()
        d = Dialog(sip, ("127.0.0.1", server.port), rtp_port=media.port)
        d.send(d.request("INVITE"))
        ok = await sip.expect(r"SIP/2.0 200")
        assert re.search(r"m=audio \d+ RTP/AVP 0 8 101\r\n", ok) and header(ok, "Content-Type") == "application/sdp"
        d.to_tag = re.search(r"^To:.*;tag=([^;\r]+)", ok, re.M).group(1)  # type: ignore[union-attr]
        d.send(d.request("ACK", d.offer(fmts="8", codec_lines="a=rtpmap:8 PCMA/8000\r\n")))
        pkt = await media.recv()
        assert pkt[1] & 0x7F == 8
        await asyncio.sleep(0.1)
        assert handler.channels[0].inband_dtmf and handler.channels[0].info.extra["codec"] == "PCMA"
        # a second call whose ACK answers nothing usable is hung up at once
        d2 = Dialog(sip, d.server, rtp_port=media.port)
        d2.send(d2.request("INVITE"))
        ok2 = await sip.expect(r"SIP/2.0 200(?s:.*)" + re.escape(d2.call_id))
        d2.to_tag = re.search(r"^To:.*;tag=([^;\r]+)", ok2, re.M).group(1)  # type: ignore[union-attr]
        d2.send(d2.request("ACK", d2.offer(fmts="18", codec_lines="a=rtpmap:18 G729/8000\r\n")))
        bye = await sip.expect(r"BYE ")
        assert header(bye, "Call-ID") == d2.call_id
        assert server.ended_calls[-1][1].startswith("no usable SDP answer in the ACK")
        d.cseq += 1
        d.send(d.request("BYE"))
        await sip.expect(r"SIP/2.0 200 OK\r\n(?s:.*)CSeq: \d+ BYE")
        sip.send("SIP/2.0 200 OK\r\n" + "\r\n".join(
            line for line in bye.split("\r\n") if re.match(r"(Via|From|To|Call-ID|CSeq):", line)) +
            "\r\nContent-Length: 0\r\n\r\n", d.server)
        assert not any((await idle(server)).values())
        await server.stop()

    run(main())


def test_silent_caller_is_hung_up_after_the_rtp_timeout_but_not_while_holding() -> None:
    async def main() -> None:
        handler = ToneHandler(frames=0, hang_up=False)
        server = await serve(handler, rtp_timeout=0.4)
        sip, media = await open_peer(), await open_peer()
        d = Dialog(sip, ("127.0.0.1", server.port), rtp_port=media.port)
        await answer_call(d, direction="inactive")  # held from the start: no RTP expected from the caller
        d.send(d.ack())
        await asyncio.sleep(0.8)
        assert len(server.calls) == 1
        d.cseq += 1
        d.send(d.request("INVITE", d.offer(direction="sendrecv")))
        await sip.expect(r"SIP/2.0 200")
        d.send(d.ack())
        bye = await sip.expect(r"BYE ")  # the caller never sends: hung up after 0.4 s
        assert server.ended_calls[-1] == (d.call_id, "no RTP from the caller (timeout)")
        sip.send(_ok_for(bye), d.server)
        await handler.done.wait()
        assert not any((await idle(server)).values())
        await server.stop()

    run(main())


def test_same_call_id_with_another_from_tag_is_another_call() -> None:
    """RFC 3261 12: a dialog is the Call-ID with both tags. Two callers that chose one Call-ID are two calls (a merged
    request needs the same From tag and CSeq too), and each BYE ends its own."""
    async def main() -> None:
        server = await serve(ToneHandler(frames=0, hang_up=False))
        sip = await open_peer()
        first = Dialog(sip, ("127.0.0.1", server.port), rtp_port=(await open_peer()).port)
        second = Dialog(sip, ("127.0.0.1", server.port), rtp_port=(await open_peer()).port)
        second.call_id = first.call_id
        for d in (first, second):
            await answer_call(d)
            d.send(d.ack())
        assert first.to_tag != second.to_tag and len(server.calls) == 2
        first.cseq += 1
        first.send(first.request("BYE"))
        await sip.expect(r"SIP/2.0 200 OK\r\n(?s:.*)CSeq: 2 BYE")
        assert [call.remote_tag for call in server.calls.values()] == [second.from_tag]
        second.cseq += 1
        second.send(second.request("BYE"))
        await sip.expect(r"SIP/2.0 200 OK\r\n(?s:.*)CSeq: 2 BYE")
        assert [reason for _, reason in server.ended_calls] == ["caller hung up", "caller hung up"]
        assert not any((await idle(server)).values())
        await server.stop()

    run(main())


def test_draining_server_answers_options_and_invites_503_while_its_call_goes_on() -> None:
    async def main() -> None:
        handler = ToneHandler(frames=0, hang_up=False)
        server = await serve(handler, retry_after=9)
        sip = await open_peer()
        d = Dialog(sip, ("127.0.0.1", server.port), rtp_port=(await open_peer()).port)
        probe = Dialog(sip, ("127.0.0.1", server.port))
        probe.send(probe.request("OPTIONS"))
        assert (await sip.expect(r"SIP/2.0 ")).startswith("SIP/2.0 200 OK")
        await answer_call(d)
        d.send(d.ack())
        stopping = asyncio.create_task(server.stop(drain_seconds=30))  # Ctrl-C: the call in progress may go on
        await asyncio.sleep(0.1)
        probe.cseq += 1
        probe.send(probe.request("OPTIONS"))  # a proxy's probe: take no new calls here
        busy = await sip.expect(r"SIP/2.0 ")
        assert busy.startswith("SIP/2.0 503 Service Unavailable") and header(busy, "Retry-After") == "9"
        assert header(busy, "CSeq") == "2 OPTIONS" and ";tag=" in header(busy, "To")
        late = Dialog(sip, ("127.0.0.1", server.port), rtp_port=5000)
        late.send(late.invite())
        assert (await sip.expect(r"SIP/2.0 5")).startswith("SIP/2.0 503")
        late.send(late.request("ACK", branch=late.branch))
        assert not stopping.done() and len(server.calls) == 1
        d.cseq += 1
        d.send(d.request("BYE"))  # the call in progress ends normally, then the server stops
        assert (await sip.expect(r"SIP/2.0 200")).find("CSeq: 2 BYE") > 0
        await stopping
        assert server.counters["options_503"] == 1 and server.refused["stopping"] == 1

    run(main())


def test_dialog_answers_copy_record_route_and_our_bye_follows_it() -> None:
    async def main() -> None:
        handler = ToneHandler(frames=5)  # hangs up after 100 ms of tone
        server = await serve(handler, ring_seconds=0.05)
        sip = await open_peer()
        d = Dialog(sip, ("127.0.0.1", server.port), rtp_port=(await open_peer()).port)
        routes = ("Record-Route: <sip:127.0.0.10:5060;lr;ftag=x>, <sip:10.1.1.1;lr>\r\n"
                  "Record-Route: <sip:10.2.2.2;lr>\r\n")
        d.send(d.request("INVITE", d.offer(), extra=routes))
        ringing = await sip.expect(r"SIP/2.0 180 ")
        ok = await sip.expect(r"SIP/2.0 200 ")
        for answer in (ringing, ok):  # RFC 3261 12.1.1: every value, in order
            assert re.findall(r"^Record-Route: (.*)\r$", answer, re.M) == [
                "<sip:127.0.0.10:5060;lr;ftag=x>, <sip:10.1.1.1;lr>", "<sip:10.2.2.2;lr>"]
        d.to_tag = re.search(r"^To:.*;tag=([^;\r]+)", ok, re.M).group(1)  # type: ignore[union-attr]
        d.send(d.ack())
        bye = await sip.expect(r"BYE ")
        assert re.findall(r"^Route: (.*)\r$", bye, re.M) == [
            "<sip:127.0.0.10:5060;lr;ftag=x>", "<sip:10.1.1.1;lr>", "<sip:10.2.2.2;lr>"]
        sip.send(_ok_for(bye), d.server)
        d2 = Dialog(sip, ("127.0.0.1", server.port), rtp_port=5000)
        d2.send(d2.request("OPTIONS", extra=routes))
        assert "Record-Route" not in await sip.expect(r"SIP/2.0 200")  # not a dialog
        assert not any((await idle(server)).values())
        await server.stop()

    run(main())
