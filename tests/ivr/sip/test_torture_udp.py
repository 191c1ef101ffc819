"""The 49 RFC 4475 torture messages sent over UDP to a running UAS, each followed by an OPTIONS liveness probe."""
from __future__ import annotations

import asyncio
import re

from sipclient import ToneHandler, header, open_peer
from torture import EXPECTED, manifest, message

from ivr.sip.endpoint import SipServerConfig
from ivr.sip.transaction import SipTimers
from ivr.sip.uas import SipServer


def probe(port: int, server_port: int, n: int) -> str:
    return (f"OPTIONS sip:ping@127.0.0.1:{server_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKprobe{n}\r\nFrom: <sip:probe@127.0.0.1>;tag=p{n}\r\n"
            f"To: <sip:ping@127.0.0.1>\r\nCall-ID: probe-{n}@test\r\nCSeq: {n} OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n")


def in_dialog(method: str, ok: str, port: int, cseq: int) -> str:
    return (f"{method} sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{method}{cseq}x\r\n"
            f"From: {header(ok, 'From')}\r\nTo: {header(ok, 'To')}\r\nCall-ID: {header(ok, 'Call-ID')}\r\n"
            f"CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")


def test_torture_messages_over_udp_with_liveness_probe() -> None:
    async def main() -> None:
        cfg = SipServerConfig(host="127.0.0.1", port=0, rtp_port_min=43000, rtp_port_max=43999,
                              timers=SipTimers(t1=0.02, t2=0.16, t4=0.05))
        server = SipServer(cfg, ToneHandler(frames=0, hang_up=False))
        await server.start()
        peer = await open_peer()
        addr = ("127.0.0.1", server.port)
        answers: dict[str, int | None] = {}
        seen_call_ids: set[str] = set()
        for n, row in enumerate(manifest(), 1):
            ident = row["id"]
            peer.send(message(ident), addr)
            peer.send(probe(peer.port, server.port, n), addr)
            got: int | None = None
            invite_ok: str | None = None
            probe_ok = False
            while not probe_ok or (EXPECTED[ident] == 200 and row["kind"] == "request" and got is None):
                text = (await peer.recv(timeout=10)).decode("utf-8", "surrogateescape")
                status = int(text[8:11])
                if re.search(r"^Call-ID:", text, re.M | re.I) and header(text, "Call-ID") in seen_call_ids:
                    continue  # a retransmitted final response to an earlier INVITE (we never ACK those)
                if f"probe-{n}@test" in text:
                    assert status == 200, text
                    probe_ok = True
                elif status >= 200 or (status >= 100 and "INVITE" not in header(text, "CSeq")):
                    got = status
                    if status == 200 and header(text, "CSeq").endswith("INVITE"):
                        invite_ok = text
            answers[ident] = got
            if b"\r\nCall-ID: " in message(ident):
                seen_call_ids.add(message(ident).split(b"\r\nCall-ID: ")[1].split(b"\r\n")[0].decode())
            if invite_ok is not None:  # a call was set up: confirm it and hang up like a caller would
                cseq = int(re.match(r"\d+", header(invite_ok, "CSeq")).group(0))  # type: ignore[union-attr]
                peer.send(in_dialog("ACK", invite_ok, peer.port, cseq), addr)
                peer.send(in_dialog("BYE", invite_ok, peer.port, cseq + 1), addr)
                while True:
                    text = (await peer.recv(timeout=10)).decode("utf-8", "surrogateescape")
                    if "BYE" in header(text, "CSeq"):
                        assert text.startswith("SIP/2.0 200"), text
                        break
        assert answers == EXPECTED
        for _ in range(200):
            if not any(server.resources().values()):
                break
            await asyncio.sleep(0.05)
        assert not any(server.resources().values()), server.resources()
        assert server.counters.get("internal_errors", 0) == 0
        assert server.counters["calls"] == 4  # esc01, longreq, baddate, inv2543 (the other 200s are OPTIONS)
        await server.stop()

    asyncio.run(main())
