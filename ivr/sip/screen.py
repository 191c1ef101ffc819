"""First look at a datagram: parse, validate and decide whether the UAS processes it, rejects it or drops it.

This is the pure part of the UAS's front door, so every RFC 4475 torture message can be checked without a socket.
Rejections are answered statelessly by the UAS with `build_response`; drops are logged once and forgotten.
"""
from __future__ import annotations

from dataclasses import dataclass

from ivr.sip.headers import RequestSummary, validate_request
from ivr.sip.message import Header, Request, Response, SipMessage, SipParseError, parse_message

__all__ = ["Screened", "screen", "build_response", "SUPPORTED_METHODS", "ALLOW", "REASONS"]

SUPPORTED_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"})
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS"
#: Methods we understand but do not serve as a UAS (no registrar, no messaging).
NOT_ALLOWED_METHODS = frozenset({"REGISTER", "SUBSCRIBE", "PUBLISH", "MESSAGE", "NOTIFY", "REFER", "INFO",
                                 "PRACK", "UPDATE"})
_NAMES = {"via": "Via", "from": "From", "call-id": "Call-ID", "cseq": "CSeq"}
_SDP_ACCEPT = ("application/sdp", "application/*", "*/*")

REASONS = {
    100: "Trying", 180: "Ringing", 200: "OK", 400: "Bad Request", 403: "Forbidden", 405: "Method Not Allowed",
    406: "Not Acceptable", 415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 486: "Busy Here",
    487: "Request Terminated", 488: "Not Acceptable Here", 491: "Request Pending", 500: "Server Internal Error",
    501: "Not Implemented", 503: "Service Unavailable", 505: "Version Not Supported", 513: "Message Too Large",
}


@dataclass(frozen=True)
class Screened:
    """The verdict on one datagram: exactly one of `request`, `response`, `reject` or a drop (`drop_reason`)."""

    request: Request | None = None
    summary: RequestSummary | None = None
    response: Response | None = None
    reject: Response | None = None  # the stateless answer to send back
    drop_reason: str = ""
    reason: str = ""  # why it was rejected (for the log)


def build_response(
    req: SipMessage, status: int, reason: str | None = None, to_tag: str | None = None,
    extra: list[tuple[str, str]] | None = None, body: bytes = b"", content_type: str | None = None,
) -> Response:
    """A response to `req` copying Via, From, To, Call-ID and CSeq (RFC 3261 section 8.2.6); one that makes a dialog
    (101-299 to an INVITE, with our To tag) also copies the Record-Route values in order (section 12.1.1), so the
    caller routes its ACK and BYE through the proxies that asked to stay on the path."""
    resp = Response(status=status, reason=reason or REASONS.get(status, "Unknown"))
    dialog = to_tag is not None and 100 < status < 300 and isinstance(req, Request) and req.method == "INVITE"
    for h in req.headers:
        if h.key in ("via", "from", "call-id", "cseq"):
            resp.headers.append(Header(_NAMES[h.key], h.text))
        elif h.key == "record-route" and dialog:
            resp.headers.append(Header("Record-Route", h.text))
        elif h.key == "to":
            value = h.text
            if to_tag and ";tag=" not in value.replace(" ", "").lower():
                value += f";tag={to_tag}"
            resp.headers.append(Header("To", value))
    for name, value in extra or []:
        resp.headers.append(Header(name, value))
    if content_type:
        resp.headers.append(Header("Content-Type", content_type))
    resp.headers.append(Header("Content-Length", str(len(body))))
    resp.body = body
    return resp


def _has_answer_headers(msg: SipMessage) -> bool:
    return all(msg.count(n) > 0 for n in ("Via", "CSeq", "Call-ID", "From", "To"))


def _reject(req: SipMessage, status: int, reason: str, extra: list[tuple[str, str]] | None = None) -> Screened:
    if msg_is_ack(req):
        return Screened(drop_reason=f"ACK not answered: {reason}")
    if req.count("Via") == 0:
        return Screened(drop_reason=f"no Via to answer: {reason}")
    return Screened(reject=build_response(req, status, extra=extra), reason=reason)


def msg_is_ack(msg: SipMessage) -> bool:
    return isinstance(msg, Request) and msg.method == "ACK"


def screen(data: bytes) -> Screened:
    """Classify one datagram. Never raises."""
    try:
        msg = parse_message(data)
    except SipParseError as exc:
        partial = exc.message
        if isinstance(partial, Request) and partial.headers:
            return _reject(partial, exc.status, exc.reason)
        return Screened(drop_reason=exc.reason)
    if isinstance(msg, Response):
        if not _has_answer_headers(msg):
            return Screened(drop_reason="response without Via, From, To, Call-ID or CSeq")
        return Screened(response=msg)
    try:
        summary = validate_request(msg, SUPPORTED_METHODS)
    except SipParseError as exc:
        return _reject(msg, exc.status, exc.reason)
    if msg.method not in SUPPORTED_METHODS:
        status = 405 if msg.method in NOT_ALLOWED_METHODS else 501
        return _reject(msg, status, f"method {msg.method} is not served", [("Allow", ALLOW)])
    if summary.require and msg.method not in ("ACK", "CANCEL"):
        return _reject(msg, 420, "unsupported Require options", [("Unsupported", ", ".join(summary.require))])
    if msg.method == "INVITE":
        ctype = (msg.get("Content-Type") or "").split(";")[0].strip().lower()
        if msg.body and ctype != "application/sdp":
            return _reject(msg, 415, f"body of type {ctype!r}", [("Accept", "application/sdp")])
        accept = msg.get_all("Accept")
        if msg.count("Accept") and not any(a.split(";")[0].strip().lower() in _SDP_ACCEPT for a in accept):
            return _reject(msg, 406, "Accept lacks application/sdp", [("Accept", "application/sdp")])
    return Screened(request=msg, summary=summary)
