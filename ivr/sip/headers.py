"""Structured SIP header values (RFC 3261 section 25): addresses, Via, CSeq, and request validation.

All functions are pure and raise SipParseError with an exact reason; `validate_request` returns the typed summary
that the UAS works from, or raises with the status the UAS should answer (400, 416, ...).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ivr.sip.message import Request, SipParseError, split_unquoted, split_values

__all__ = [
    "Address", "Via", "CSeq", "RequestSummary", "parse_address", "parse_via", "parse_cseq", "parse_params",
    "format_params", "validate_request", "uri_host_port", "MAGIC_COOKIE",
]

MAGIC_COOKIE = "z9hG4bK"
_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_TOKEN_RE = re.compile(_TOKEN)
_DISPLAY_RE = re.compile(r"(?:" + _TOKEN + r"(?:[ \t]+" + _TOKEN + r")*)?")
_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"]+")
_VIA_RE = re.compile(
    r"SIP[ \t]*/[ \t]*(\d+\.\d+)[ \t]*/[ \t]*(" + _TOKEN + r")[ \t]+"
    r"([A-Za-z0-9\-.]+|\[[0-9A-Fa-f:.]+\])(?:[ \t]*:[ \t]*(\d{1,5}))?[ \t]*(;.*)?",
    re.DOTALL,
)
_CSEQ_RE = re.compile(r"(\d+)[ \t]+(" + _TOKEN + r")")
_MAX_CSEQ = 2**31 - 1
_SINGLE = ("From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Type", "Content-Length")
_MANDATORY = ("Via", "From", "To", "Call-ID", "CSeq")


@dataclass(frozen=True)
class Address:
    """A name-addr or addr-spec (From, To, Contact, Route): display name, URI and header parameters."""

    uri: str
    display: str | None = None
    params: tuple[tuple[str, str | None], ...] = ()

    def param(self, name: str) -> str | None:
        low = name.lower()
        return next((v for k, v in self.params if k.lower() == low), None)

    @property
    def tag(self) -> str | None:
        return self.param("tag")

    @property
    def scheme(self) -> str:
        return self.uri.split(":", 1)[0].lower()


@dataclass(frozen=True)
class Via:
    version: str
    transport: str
    host: str
    port: int | None
    params: tuple[tuple[str, str | None], ...] = ()

    def param(self, name: str) -> str | None:
        low = name.lower()
        return next((v for k, v in self.params if k.lower() == low), None)

    def has_param(self, name: str) -> bool:
        low = name.lower()
        return any(k.lower() == low for k, _ in self.params)

    @property
    def branch(self) -> str | None:
        return self.param("branch")


@dataclass(frozen=True)
class CSeq:
    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


@dataclass(frozen=True)
class RequestSummary:
    """What the UAS needs from a valid request."""

    method: str
    uri: str
    call_id: str
    cseq: CSeq
    from_: Address
    to: Address
    vias: tuple[Via, ...]
    contact: Address | None = None
    max_forwards: int | None = None
    require: tuple[str, ...] = field(default_factory=tuple)

    @property
    def branch(self) -> str | None:
        return self.vias[0].branch


def parse_params(text: str, where: str) -> tuple[tuple[str, str | None], ...]:
    """Parse `;name[=value]...` (the text starts with ';' or is empty)."""
    text = text.strip(" \t")
    if not text:
        return ()
    if not text.startswith(";"):
        raise SipParseError(f"invalid parameters in {where}")
    out: list[tuple[str, str | None]] = []
    parts, unterminated = split_unquoted(text[1:], ";")
    if unterminated:
        raise SipParseError("unterminated quoted string in a parameter")
    for part in parts:
        name, eq, value = part.partition("=")
        name = name.strip(" \t")
        if not _TOKEN_RE.fullmatch(name):
            raise SipParseError(f"invalid parameter {part.strip()!r} in {where}")
        if eq:
            value = value.strip(" \t")
            if not value:
                raise SipParseError(f"empty value of parameter {name!r} in {where}")
            if not value.startswith('"') and not re.fullmatch(r"[^\s\";,]+", value):
                raise SipParseError(f"invalid value of parameter {name!r} in {where}")
            out.append((name, value))
        else:
            out.append((name, None))
    return tuple(out)


def format_params(params: tuple[tuple[str, str | None], ...]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def _quoted(text: str, where: str) -> tuple[str, str]:
    """Split a leading quoted string off `text`: (unescaped content, rest)."""
    out: list[str] = []
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text):
                break
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), text[i + 1 :]
        out.append(ch)
        i += 1
    raise SipParseError(f"unterminated quoted string in {where}")


def parse_address(value: str, where: str) -> Address:
    """Parse a name-addr or addr-spec with its parameters."""
    s = value.strip(" \t")
    display: str | None = None
    if s.startswith('"'):
        display, s = _quoted(s, where)
        s = s.lstrip(" \t")
        if not s.startswith("<"):
            raise SipParseError(f"missing <URI> after the display name in {where}")
    elif "<" in s:
        lt = s.index("<")
        name = s[:lt].strip(" \t")
        if not _DISPLAY_RE.fullmatch(name):
            raise SipParseError(f"invalid display name in {where}")
        display = name or None
        s = s[lt:]
    if s.startswith("<"):
        gt = s.find(">")
        if gt < 0:
            raise SipParseError(f"unterminated <URI> in {where}")
        uri, rest = s[1:gt], s[gt + 1 :]
    else:
        uri, sep, rest = s.partition(";")
        uri = uri.rstrip(" \t")
        rest = sep + rest
        if "?" in uri.rpartition("@")[2] or "," in uri:
            raise SipParseError(f"a URI with header fields must be enclosed in <> in {where}")
    if not _URI_RE.fullmatch(uri):
        raise SipParseError(f"invalid URI in {where}")
    return Address(uri=uri, display=display, params=parse_params(rest, where))


def parse_via(value: str) -> Via:
    m = _VIA_RE.fullmatch(value.strip(" \t"))
    if m is None:
        raise SipParseError(f"invalid Via {value[:60]!r}")
    port = int(m.group(4)) if m.group(4) else None
    if port is not None and not 0 < port < 65536:
        raise SipParseError(f"invalid port in Via {value[:60]!r}")
    return Via(m.group(1), m.group(2).upper(), m.group(3), port, parse_params(m.group(5) or "", "Via"))


def parse_cseq(value: str) -> CSeq:
    m = _CSEQ_RE.fullmatch(value)
    if m is None:
        raise SipParseError(f"invalid CSeq {value[:40]!r}")
    number = int(m.group(1)) if len(m.group(1)) <= 12 else _MAX_CSEQ + 1
    if number > _MAX_CSEQ:
        raise SipParseError("CSeq number is out of range")
    return CSeq(number, m.group(2))


def uri_user(uri: str) -> str:
    """The user part of a sip:/sips:/tel: URI ("13800138000" of sip:13800138000@10.0.0.1;user=phone)."""
    return uri.split(":", 1)[-1].split("@", 1)[0].split(";", 1)[0]


def uri_host_port(uri: str) -> tuple[str, int | None]:
    """Host and port of a sip:/sips: URI (user part and parameters removed)."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    rest = rest.rpartition("@")[2]
    rest = re.split(r"[;?]", rest, maxsplit=1)[0]
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port = rest.partition(":")
    return host, int(port) if port.isdigit() and 0 < int(port) < 65536 else None


def _raw_vias(req: Request) -> list[str]:
    values: list[str] = []
    for h in req.headers:
        if h.key == "via":
            values.extend(split_values(h.text))
    return values


def validate_request(req: Request, known_methods: frozenset[str] | None = None) -> RequestSummary:
    """Check a parsed request for what RFC 3261 requires of it and return its summary.

    `known_methods`: when given, the CSeq method is checked against the request method only for methods in it
    (an unknown method is answered 501 by the caller instead).
    """
    counts: dict[str, int] = {}
    for h in req.headers:
        counts[h.key] = counts.get(h.key, 0) + 1
    for name in _MANDATORY:
        if counts.get(name.lower(), 0) == 0:
            raise SipParseError(f"missing {name} header field", message=req)
    for name in _SINGLE:
        if counts.get(name.lower(), 0) > 1:
            raise SipParseError(f"multiple {name} header fields", message=req)
    scheme = req.uri.split(":", 1)[0].lower() if ":" in req.uri else ""
    if not _URI_RE.fullmatch(req.uri):
        raise SipParseError(f"invalid Request-URI {req.uri[:60]!r}", message=req)
    if scheme not in ("sip", "sips"):
        raise SipParseError(f"unsupported URI scheme {scheme!r}", status=416, message=req)
    if "?" in req.uri.rpartition("@")[2]:
        raise SipParseError("Request-URI must not carry header fields", message=req)
    cseq = parse_cseq(req.get("CSeq") or "")
    vias: list[Via] = []
    for raw in _raw_vias(req):
        if not raw:
            raise SipParseError("empty value in Via", message=req)
        vias.append(parse_via(raw))
    if vias[0].version != "2.0":
        raise SipParseError(f"unsupported SIP version in Via {vias[0].version!r}", status=505, message=req)
    branch = vias[0].branch
    if branch is not None and branch == MAGIC_COOKIE:
        raise SipParseError("Via branch has no transaction id", message=req)
    from_ = parse_address(req.get("From") or "", "From")
    to = parse_address(req.get("To") or "", "To")
    contacts = req.get_all("Contact")
    contact = parse_address(contacts[0], "Contact") if contacts else None
    for extra in contacts[1:]:
        parse_address(extra, "Contact")
    mf_text = req.get("Max-Forwards")
    max_forwards: int | None = None
    if mf_text is not None:
        if not mf_text.isdigit() or not mf_text.isascii():
            raise SipParseError(f"invalid Max-Forwards {mf_text[:20]!r}", message=req)
        max_forwards = int(mf_text) if len(mf_text) <= 6 else None
    call_id = req.get("Call-ID") or ""
    if not call_id or any(c in call_id for c in " \t"):
        raise SipParseError("invalid Call-ID", message=req)
    if (known_methods is None or req.method in known_methods) and cseq.method != req.method:
        raise SipParseError(
            f"CSeq method {cseq.method!r} does not match request method {req.method!r}", message=req
        )
    require = tuple(req.get_all("Require"))
    return RequestSummary(
        method=req.method, uri=req.uri, call_id=call_id, cseq=cseq, from_=from_, to=to, vias=tuple(vias),
        contact=contact, max_forwards=max_forwards, require=require,
    )
