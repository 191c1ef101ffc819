"""One inbound call's dialog as the UAS keeps it (RFC 3261 12): its state, its transactions and media, and the
requests we send inside it (BYE, REFER), routed along the caller's Record-Route.

Calls are dialogs keyed by Call-ID and the caller's From tag (`dialog_key`): the same Call-ID with another From tag
is another call.
"""
from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from ivr.channel.sip import SipChannel
from ivr.rtp.session import RtpSession
from ivr.sip.headers import MAGIC_COOKIE, RequestSummary
from ivr.sip.message import Request
from ivr.sip.sdp import Negotiated
from ivr.sip.transaction import ServerTransaction

__all__ = ["Call", "dialog_key", "new_tag", "contact", "in_dialog_request"]


@dataclass
class Call:
    call_id: str
    peer: tuple[str, int]
    invite: Request
    summary: RequestSummary
    local_tag: str
    local_host: str
    invite_tx: ServerTransaction
    session: RtpSession
    negotiated: Negotiated
    answer_sdp: bytes
    session_id: int
    sdp_version: int = 1
    state: str = "early"  # early -> answered (200 sent) -> confirmed (ACK) -> ended
    remote_cseq: int = 0
    local_cseq: int = 0
    pending_tx: ServerTransaction | None = None  # a 2xx waiting for its ACK
    channel: SipChannel | None = None
    task: asyncio.Task[None] | None = None
    ring_handle: asyncio.TimerHandle | None = None
    end_reason: str = ""
    awaiting_answer: bool = False  # we offered in the 200 (delayed offer): the answer comes in the ACK

    reoffered: bool = False  # our 200 to a re-INVITE without SDP offered again: the ACK may carry an answer

    @property
    def remote_tag(self) -> str | None:
        return self.summary.from_.tag

    @property
    def key(self) -> tuple[str, str]:
        return dialog_key(self.summary)


def dialog_key(summary: RequestSummary) -> tuple[str, str]:
    """What tells the caller's dialogs apart (RFC 3261 12): the Call-ID and the caller's From tag."""
    return summary.call_id, summary.from_.tag or ""


def new_tag() -> str:
    return f"{random.getrandbits(48):012x}"


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def contact(call: Call, port: int) -> str:
    """Our Contact in the call's dialog: the address the caller reached, on the SIP port."""
    return f"<sip:ivr@{_host(call.local_host)}:{port}>"


def in_dialog_request(call: Call, method: str, port: int, user_agent: str,
                      extra: list[tuple[str, str]] | None = None) -> tuple[str, Request]:
    """The next request of ours in the call's dialog (its CSeq counted) and its branch: to the caller's Contact,
    along the Record-Route of their INVITE, From and To swapped."""
    call.local_cseq += 1
    branch = MAGIC_COOKIE + f"{random.getrandbits(64):016x}"
    target = call.summary.contact.uri if call.summary.contact else call.summary.from_.uri
    req = Request(method=method, uri=target)
    req.add("Via", f"SIP/2.0/UDP {_host(call.local_host)}:{port};branch={branch};rport")
    req.add("Max-Forwards", "70")
    for route in call.invite.get_all("Record-Route"):
        req.add("Route", route)
    to_value = call.invite.get("To") or ""
    req.add("From", f"{to_value};tag={call.local_tag}")
    req.add("To", call.invite.get("From") or "")
    req.add("Call-ID", call.call_id)
    req.add("CSeq", f"{call.local_cseq} {method}")
    for name, value in extra or []:
        req.add(name, value)
    req.add("User-Agent", user_agent)
    req.add("Content-Length", "0")
    return branch, req
