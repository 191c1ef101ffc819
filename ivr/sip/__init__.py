"""SIP for the hotline front end: an RFC 3261 UAS subset over UDP.

Public API:

- `SipServer(config, handler)`, `SipServerConfig`: answer calls, run `await handler(channel)` per call
  (`ivr.channel.sip.SipChannel`), `await server.start()` / `await server.stop(drain_seconds)`.
- Pure protocol: `parse_message` / `bytes(msg)` (`Request`, `Response`), `validate_request`, `screen`,
  `parse_sdp` / `bytes(sdp)`, `answer_offer`.

Exceptions (under `ivr.errors.IvrError`, and ValueError): `SipParseError` (message unusable; `.status` is the
answer to send), `SdpError` and its subclass `SdpNegotiationError` (nothing we can answer: 488).
"""
from ivr.sip.endpoint import SipServerConfig
from ivr.sip.headers import validate_request
from ivr.sip.message import Request, Response, SipParseError, parse_message
from ivr.sip.screen import screen
from ivr.sip.sdp import SdpError, SdpNegotiationError, answer_offer, parse_sdp
from ivr.sip.uas import SipServer

__all__ = [
    "SipServer", "SipServerConfig", "Request", "Response", "SipParseError", "parse_message", "validate_request",
    "screen", "SdpError", "SdpNegotiationError", "parse_sdp", "answer_offer",
]
