"""SIP messages (RFC 3261 section 7): parse() and __bytes__ with byte-exact round trips.

Framing is strict: the start line and header fields end with CRLF, an empty line ends the header block, and the
body is framed by Content-Length (or runs to the end of the datagram when it is absent, as RFC 3261 allows over
UDP). Octets after the body are ignored. Header fields keep their name, separator and raw value (including
folded continuation lines) so that `bytes(parse_message(data))` gives back exactly the octets that were parsed.
Text is decoded as UTF-8 with `surrogateescape`, so any octet survives the round trip.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from ivr.errors import IvrError

__all__ = [
    "SipParseError", "Header", "SipMessage", "Request", "Response", "parse_message",
    "COMPACT_FORMS", "canonical_name", "split_values", "unfold",
]

CRLF = "\r\n"
SIP_VERSION = "SIP/2.0"

#: RFC 3261 section 7.3.3 and later RFCs: compact form -> full name (lower case).
COMPACT_FORMS = {
    "a": "accept-contact", "b": "referred-by", "c": "content-type", "d": "request-disposition",
    "e": "content-encoding", "f": "from", "i": "call-id", "j": "reject-contact", "k": "supported",
    "l": "content-length", "m": "contact", "n": "identity-info", "o": "event", "r": "refer-to", "s": "subject",
    "t": "to", "u": "allow-events", "v": "via", "x": "session-expires", "y": "identity",
}

_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_HEADER_RE = re.compile(r"(" + _TOKEN + r")([ \t]*:[ \t]*)(.*)", re.DOTALL)
_REQUEST_LINE_RE = re.compile(r"(" + _TOKEN + r") ([^ \t\r\n]+) (SIP/\d+\.\d+)")
_STATUS_LINE_RE = re.compile(r"(SIP/\d+\.\d+) (\d{3}) ([^\r\n]*)")
_FOLD_RE = re.compile(r"\r\n[ \t]+")


class SipParseError(IvrError, ValueError):
    """A SIP message that cannot be parsed or used.

    `status` is the response a UAS should send (400 unless said otherwise); `message` holds whatever could be
    parsed (at least the header fields when the header block was readable), so that the response can be built.
    """

    def __init__(self, reason: str, status: int = 400, message: SipMessage | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.message = message


def canonical_name(name: str) -> str:
    """Lower-case full name of a header field, expanding compact forms ('i' -> 'call-id')."""
    low = name.lower()
    return COMPACT_FORMS.get(low, low)


def unfold(value: str) -> str:
    """A header value with folded continuation lines joined by single spaces and outer whitespace removed."""
    return _FOLD_RE.sub(" ", value).strip(" \t")


def split_unquoted(text: str, sep: str, *, angles: bool = False) -> tuple[list[str], bool]:
    """`text` split at `sep` where it is not inside a quoted string (nor, with `angles`, inside <...>): the parts as
    written, and whether a quoted string was left open at the end."""
    parts: list[str] = []
    cur: list[str] = []
    in_quote = in_angle = escaped = False
    for ch in text:
        if in_quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif angles and ch in "<>":
            in_angle = ch == "<"
        elif ch == sep and not in_angle:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts, in_quote


def split_values(value: str) -> list[str]:
    """Split a header value at top-level commas (outside quoted strings and <...>), stripping each part."""
    if '"' not in value and "<" not in value:  # the common case: no quoting to respect
        return [p.strip(" \t") for p in value.split(",")]
    return [p.strip(" \t") for p in split_unquoted(value, ",", angles=True)[0]]


@dataclass
class Header:
    """One header field line as written: `name`, `sep` (the colon with its surrounding blanks) and raw `value`."""

    name: str
    value: str
    sep: str = ": "

    @functools.cached_property
    def key(self) -> str:
        """Lower-case full name (computed once; header names are not changed after creation)."""
        return canonical_name(self.name)

    @property
    def text(self) -> str:
        """The value unfolded and stripped."""
        return unfold(self.value)

    def __bytes__(self) -> bytes:
        return (self.name + self.sep + self.value + CRLF).encode("utf-8", "surrogateescape")


@dataclass
class SipMessage:
    """Common part of requests and responses: header fields in order, and the body."""

    headers: list[Header] = field(default_factory=list)
    body: bytes = b""

    def get(self, name: str, default: str | None = None) -> str | None:
        """The unfolded value of the first header field called `name` (full or compact form, any case)."""
        key = canonical_name(name)
        for h in self.headers:
            if h.key == key:
                return h.text
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of the header fields called `name`, split at top-level commas."""
        key = canonical_name(name)
        out: list[str] = []
        for h in self.headers:
            if h.key == key:
                out.extend(v for v in split_values(h.text) if v)
        return out

    def count(self, name: str) -> int:
        key = canonical_name(name)
        return sum(1 for h in self.headers if h.key == key)

    def add(self, name: str, value: str) -> None:
        self.headers.append(Header(name, value))

    def set(self, name: str, value: str) -> None:
        """Replace every header field called `name` by one with this value (appended when absent)."""
        key = canonical_name(name)
        idx = next((i for i, h in enumerate(self.headers) if h.key == key), len(self.headers))
        kept = [h for h in self.headers[:idx]] + [h for h in self.headers[idx:] if h.key != key]
        kept.insert(idx, Header(name, value))
        self.headers = kept

    def remove(self, name: str) -> None:
        key = canonical_name(name)
        self.headers = [h for h in self.headers if h.key != key]

    def start_line(self) -> str:
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        head = (self.start_line() + CRLF).encode("utf-8", "surrogateescape")
        return head + b"".join(bytes(h) for h in self.headers) + CRLF.encode() + self.body


@dataclass
class Request(SipMessage):
    method: str = ""
    uri: str = ""
    version: str = SIP_VERSION

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"


@dataclass
class Response(SipMessage):
    status: int = 200
    reason: str = "OK"
    version: str = SIP_VERSION

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"


def _parse_headers(lines: list[str]) -> list[Header]:
    headers: list[Header] = []
    raw: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not raw:
                raise SipParseError("header block starts with a continuation line")
            raw[-1] += CRLF + line
        else:
            raw.append(line)
    for text in raw:
        m = _HEADER_RE.fullmatch(text)
        if m is None:
            shown = text.split(CRLF)[0][:40]
            raise SipParseError(f"malformed header line {shown!r}")
        headers.append(Header(m.group(1), m.group(3), m.group(2)))
    return headers


def _content_length(headers: list[Header], partial: SipMessage) -> int | None:
    values = [h.text for h in headers if h.key == "content-length"]
    if not values:
        return None
    if len(values) > 1:
        raise SipParseError("multiple Content-Length header fields", message=partial)
    if not values[0].isdigit() or not values[0].isascii() or len(values[0]) > 9:
        raise SipParseError(f"invalid Content-Length {values[0]!r}", message=partial)
    return int(values[0])


def _partial_request(data: bytes) -> Request | None:
    """The header fields of an unframed request, so that it can still be answered 400."""
    text = data.decode("utf-8", "surrogateescape")
    if text.startswith("SIP/") or CRLF not in text:
        return None
    lines = text.rstrip("\r\n").split(CRLF)[1:]
    try:
        return Request(headers=_parse_headers(lines))
    except SipParseError:
        return None


def parse_message(data: bytes) -> Request | Response:
    """Parse one SIP message from a datagram.

    Raises SipParseError with an exact reason (and the partly parsed message when the header block was readable).
    """
    if not data:
        raise SipParseError("empty message")
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise SipParseError("no empty line after the header fields", message=_partial_request(data))
    text = data[:end].decode("utf-8", "surrogateescape")
    start, _, rest = text.partition(CRLF)
    headers = _parse_headers(rest.split(CRLF)) if rest else []
    msg: Request | Response
    if start.startswith("SIP/"):
        m = _STATUS_LINE_RE.fullmatch(start)
        if m is None:
            raise SipParseError(f"malformed status line {start[:60]!r}")
        code = int(m.group(2))
        msg = Response(headers=headers, status=code, reason=m.group(3), version=m.group(1))
        if code < 100 or code > 699:
            raise SipParseError(f"status code {code} is out of range", message=msg)
    else:
        m = _REQUEST_LINE_RE.fullmatch(start)
        partial = Request(headers=headers)
        if m is None:
            raise SipParseError(f"malformed request line {start[:60]!r}", message=partial)
        msg = Request(headers=headers, method=m.group(1), uri=m.group(2), version=m.group(3))
    if msg.version != SIP_VERSION:
        raise SipParseError(f"unsupported SIP version {msg.version!r}", status=505, message=msg)
    body = data[end + 4 :]
    length = _content_length(headers, msg)
    if length is not None:
        if length > len(body):
            raise SipParseError(
                f"Content-Length {length} is larger than the body ({len(body)} bytes)", message=msg
            )
        body = body[:length]
    msg.body = body
    return msg
