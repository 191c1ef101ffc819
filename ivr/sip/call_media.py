"""A call's media as SIP sets it up: the RTP session opened for a new INVITE and its SDP answer (or, for a delayed
offer, our offer), a re-INVITE's new answer, and the RTP session's parameters for what was negotiated."""
from __future__ import annotations

import random
from dataclasses import dataclass

from ivr.rtp.clock import MediaClock
from ivr.rtp.session import MediaParams, PortAllocator, RtpSession
from ivr.sip.sdp import Negotiated, SessionDescription, answer_offer, make_offer, parse_sdp

__all__ = ["CallMedia", "open_media", "reanswer", "media_params"]


@dataclass(frozen=True)
class CallMedia:
    """A new call's RTP session and the SDP that goes in our 200; `offered`: the INVITE had no SDP, so the 200
    carries our offer and the caller's answer comes in the ACK."""

    session: RtpSession
    sdp: bytes
    negotiated: Negotiated
    session_id: int
    offered: bool


def media_params(neg: Negotiated) -> MediaParams:
    """The RTP session's parameters for a negotiated SDP offer/answer."""
    return MediaParams(neg.codec, neg.payload_type, neg.dtmf_payload_type, (neg.remote_host, neg.remote_port),
                       neg.sending, neg.direction in ("sendrecv", "recvonly"))


def open_media(body: bytes, local_host: str, codecs: tuple[str, ...], clock: MediaClock, ports: PortAllocator,
               rtp_timeout_s: float) -> CallMedia:
    """Open the RTP session of a new INVITE with SDP `body` (empty: a delayed offer) and make our SDP.

    Raises SdpError for an unreadable description, NoFreePortError when no RTP port is free, and
    SdpNegotiationError (the session closed again) when the offer has nothing we can answer."""
    session_id = random.randint(1, 2**31)
    offer = parse_sdp(body) if body else None
    session = RtpSession(clock, ports, MediaParams("PCMU", 0, None, ("0.0.0.0", 0), False, False),
                         rx_timeout_ticks=int(rtp_timeout_s / 0.02))
    port = session.bind("0.0.0.0" if ":" not in local_host else "::")
    if offer is None:  # delayed offer: we offer in the 200, the caller answers in the ACK
        sdp = make_offer(local_host, port, session_id, 1, codecs)
        neg = Negotiated(codecs[0], 0 if codecs[0] == "PCMU" else 8, None, "0.0.0.0", 0, "inactive")
        return CallMedia(session, bytes(sdp), neg, session_id, offered=True)
    try:
        answer, neg = answer_offer(offer, local_host, port, session_id, 1, codecs)
    except BaseException:
        session.close()
        raise
    session.update(media_params(neg))
    return CallMedia(session, bytes(answer), neg, session_id, offered=False)


def reanswer(offer: SessionDescription, local_host: str, port: int, session_id: int, version: int,
             current: bytes, codecs: tuple[str, ...]) -> tuple[bytes, Negotiated, int]:
    """Answer a re-INVITE's offer: (our SDP, what it negotiates, the SDP version), the version bumped only when the
    description changed from `current` (a session refresh keeps it). Raises SdpError when it cannot be answered."""
    answer, neg = answer_offer(offer, local_host, port, session_id, version, codecs)
    body = bytes(answer)
    if _without_origin(body) != _without_origin(current):
        version += 1
        answer, neg = answer_offer(offer, local_host, port, session_id, version, codecs)
        body = bytes(answer)
    return body, neg, version


def _without_origin(sdp: bytes) -> bytes:
    return b"\r\n".join(line for line in sdp.split(b"\r\n") if not line.startswith(b"o="))
