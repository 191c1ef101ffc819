"""Outbound INVITE (a minimal UAC over UDP) for callbacks and operator legs, built on ivr.sip's parser and SDP.

`dial()` sends an INVITE with an SDP offer (through a proxy/trunk address), retransmits it (timer A) until a
response, CANCELs after the ring time-out, ACKs the final response and maps it to a callback outcome:
answered (2xx), busy (486, 600, 603), no_answer (408, 480, 487 or time-out) or failed. An answered call is held
for `hold_s` and then ended with BYE (the media bridge is not part of this module).
"""
from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass

from ivr.logs import mask_number
from ivr.sip.headers import MAGIC_COOKIE
from ivr.sip.message import Request, Response, SipParseError, parse_message
from ivr.sip.sdp import make_offer

__all__ = ["DialResult", "dial", "outcome_of"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DialResult:
    outcome: str  # answered | busy | no_answer | failed
    status: int | None
    call_id: str


def outcome_of(status: int | None) -> str:
    if status is None or status in (408, 480, 487):
        return "no_answer"
    if 200 <= status < 300:
        return "answered"
    if status in (486, 600, 603):
        return "busy"
    return "failed"


class _Proto(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Response] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[no-untyped-def, override]
        try:
            msg = parse_message(data)
        except SipParseError:
            return
        if isinstance(msg, Response):
            self.queue.put_nowait(msg)


async def dial(uri: str, proxy: tuple[str, int], local_host: str = "127.0.0.1", caller: str = "12345",
               ring_timeout_s: float = 30.0, hold_s: float = 0.0, t1: float = 0.5) -> DialResult:
    """Call `uri` through `proxy`; see the module docstring for outcomes."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_Proto, local_addr=(local_host, 0))
    port = transport.get_extra_info("sockname")[1]
    call_id = secrets.token_hex(8) + "@" + local_host
    tag = secrets.token_hex(4)
    branch = MAGIC_COOKIE + secrets.token_hex(8)
    sdp = bytes(make_offer(local_host, port + 2 if port % 2 == 0 else port + 1, secrets.randbelow(1 << 30)))

    def request(method: str, cseq: int, to: str, br: str, body: bytes = b"", ctype: str = "") -> bytes:
        req = Request(method=method, uri=uri)
        req.add("Via", f"SIP/2.0/UDP {local_host}:{port};branch={br};rport")
        req.add("Max-Forwards", "70")
        req.add("From", f"<sip:{caller}@{local_host}>;tag={tag}")
        req.add("To", to)
        req.add("Call-ID", call_id)
        req.add("CSeq", f"{cseq} {method}")
        req.add("Contact", f"<sip:{caller}@{local_host}:{port}>")
        if ctype:
            req.add("Content-Type", ctype)
        req.add("Content-Length", str(len(body)))
        req.body = body
        return bytes(req)

    def send(data: bytes) -> None:
        transport.sendto(data, proxy)

    to0 = f"<{uri}>"
    invite = request("INVITE", 1, to0, branch, sdp, "application/sdp")
    status: int | None = None
    final: Response | None = None
    try:
        send(invite)
        interval, provisional = t1, False
        deadline = loop.time() + ring_timeout_s
        cancelled = False
        while final is None:
            timeout = min(interval, max(0.0, deadline - loop.time())) if not provisional else max(
                0.0, deadline - loop.time())
            try:
                resp = await asyncio.wait_for(proto.queue.get(), timeout if timeout > 0 else 0.001)
            except asyncio.TimeoutError:
                if loop.time() >= deadline:
                    if not provisional or cancelled:
                        break
                    cancelled = True
                    send(request("CANCEL", 1, to0, branch))
                    deadline = loop.time() + 64 * t1
                    continue
                if not provisional:
                    send(invite)
                    interval = min(interval * 2, 4.0)
                continue
            if "INVITE" not in (resp.get("CSeq") or ""):
                continue
            if resp.status < 200:
                provisional = True
                continue
            final = resp
        if final is None:
            return DialResult("no_answer", None, call_id)
        status = final.status
        to = final.get("To") or to0
        if 200 <= status < 300:
            send(request("ACK", 1, to, MAGIC_COOKIE + secrets.token_hex(8)))
            if hold_s:
                await asyncio.sleep(hold_s)
            bye = request("BYE", 2, to, MAGIC_COOKIE + secrets.token_hex(8))
            send(bye)
            try:
                await asyncio.wait_for(_response_to(proto, "BYE"), 64 * t1)
            except asyncio.TimeoutError:
                log.warning("no answer to BYE on %s", call_id)
        else:
            send(request("ACK", 1, to, branch))
        result = DialResult(outcome_of(status), status, call_id)
        log.info("dialled %s: %s (%s)", mask_number(uri), result.outcome, status)
        return result
    finally:
        transport.close()


async def _response_to(proto: _Proto, method: str) -> Response:
    while True:
        resp = await proto.queue.get()
        if method in (resp.get("CSeq") or "") and resp.status >= 200:
            return resp
