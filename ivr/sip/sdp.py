"""SDP (RFC 4566) parse/serialize and the audio offer/answer of RFC 3264 for G.711 and RFC 4733 events.

A description keeps every line in order, so `bytes(parse_sdp(data)) == data` for well-formed input; the typed
accessors read the lines. Parsing is as tolerant as sofia-sip's (FreeSWITCH) default mode: white space before a
line's type (`  a=fmtp:101 0-11,16`) and blank lines at the end are skipped. `answer_offer` picks the first codec of
the offer that we support (PCMU or PCMA), keeps the offer's payload type for telephone-event, mirrors the direction
and rejects other media streams (port 0), as RFC 3264 section 6 requires. The connection address must be an IP
literal of our media's family (host names are never resolved): anything else is a SdpNegotiationError whose
`warning` is the RFC 3261 warn-code for the 488.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from ivr.errors import IvrError

__all__ = [
    "SdpError", "SdpNegotiationError", "Media", "SessionDescription", "Negotiated", "parse_sdp",
    "answer_offer", "make_offer", "accept_answer", "STATIC_PAYLOAD_TYPES", "reverse_direction", "connection_address",
    "warning",
]

#: RFC 3551 static payload types we can use.
STATIC_PAYLOAD_TYPES = {0: ("PCMU", 8000), 8: ("PCMA", 8000)}
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_LINE_RE = re.compile(r"[ \t]*([a-z])=(.*)")
#: ASCII digits only: str.isdigit() also takes "²", which int() refuses, and int() refuses over 4300 digits
_UINT_RE = re.compile(r"[0-9]{1,10}")


class SdpError(IvrError, ValueError):
    """A session description that cannot be parsed."""


class SdpNegotiationError(SdpError):
    """An offer (or answer) we cannot use: no audio stream with PCMU or PCMA (warn-code 305), or a connection
    address that is not an IP literal of our family (301) or is multicast (330). The INVITE gets 488."""

    def __init__(self, message: str, warning: int) -> None:
        super().__init__(message)
        self.warning = warning


def warning(exc: SdpError) -> str:
    """The Warning header value of the 488 answering `exc` (RFC 3261 section 20.43): 301 Incompatible network
    address formats, 305 Incompatible media format, 330 Multicast not available, else 399; our message as text."""
    code = exc.warning if isinstance(exc, SdpNegotiationError) else 399
    return f'{code} - "{exc}"'


def _uint(text: str) -> int | None:
    return int(text) if _UINT_RE.fullmatch(text) else None


def _payload_type(fmt: str) -> int | None:
    pt = _uint(fmt)
    return pt if pt is not None and pt < 128 else None


@dataclass
class Media:
    """One m= section: its m= fields and the lines that follow it, in order."""

    kind: str
    port: int
    proto: str
    formats: list[str]
    lines: list[tuple[str, str]] = field(default_factory=list)

    def attributes(self, name: str) -> list[str]:
        """Values of `a=name:value` lines (empty string for a flag attribute)."""
        out = []
        for t, v in self.lines:
            if t == "a":
                key, _, val = v.partition(":")
                if key == name:
                    out.append(val)
        return out

    def rtpmap(self) -> dict[int, tuple[str, int]]:
        """Payload type -> (encoding name, clock rate), static types included."""
        table: dict[int, tuple[str, int]] = {}
        for pt in self.payload_types():
            if pt in STATIC_PAYLOAD_TYPES:
                table[pt] = STATIC_PAYLOAD_TYPES[pt]
        for value in self.attributes("rtpmap"):
            m = re.fullmatch(r"([0-9]{1,3})[ \t]+([^/\s]+)/([0-9]{1,10})(?:/\S+)?\s*", value)
            if m:
                table[int(m.group(1))] = (m.group(2), int(m.group(3)))
        return table

    def payload_types(self) -> list[int]:
        """The m= line's formats that are RTP payload types (0-127), in order."""
        return [pt for pt in map(_payload_type, self.formats) if pt is not None]

    def codec(self, codecs: tuple[str, ...]) -> tuple[int, str] | None:
        """The first format whose encoding is one of `codecs` at 8 kHz, as (payload type, encoding name)."""
        table = self.rtpmap()
        for pt in self.payload_types():
            name, rate = table.get(pt, ("", 0))
            if name.upper() in codecs and rate == 8000:
                return pt, name.upper()
        return None

    def telephone_event(self) -> int | None:
        """The payload type of RFC 4733 events at 8 kHz, if the m= line has one."""
        table = self.rtpmap()
        return next((pt for pt in self.payload_types() if table.get(pt, ("", 0))[0].lower() == "telephone-event"
                     and table[pt][1] == 8000), None)

    @property
    def direction(self) -> str | None:
        for t, v in self.lines:
            if t == "a" and v in DIRECTIONS:
                return v
        return None

    @property
    def connection(self) -> str | None:
        return next((v for t, v in self.lines if t == "c"), None)

    @property
    def ptime(self) -> int | None:
        values = self.attributes("ptime")
        return int(float(values[0])) if values and re.fullmatch(r"[0-9]{1,5}(\.[0-9]{1,5})?", values[0]) else None

    def m_line(self) -> str:
        return f"{self.kind} {self.port} {self.proto} {' '.join(self.formats)}"


@dataclass
class SessionDescription:
    """Session-level lines (v=, o=, s=, c=, t=, a=...) and the media sections."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)

    @property
    def connection(self) -> str | None:
        return next((v for t, v in self.lines if t == "c"), None)

    @property
    def direction(self) -> str | None:
        for t, v in self.lines:
            if t == "a" and v in DIRECTIONS:
                return v
        return None

    def __bytes__(self) -> bytes:
        out = [f"{t}={v}\r\n" for t, v in self.lines]
        for m in self.media:
            out.append(f"m={m.m_line()}\r\n")
            out.extend(f"{t}={v}\r\n" for t, v in m.lines)
        return "".join(out).encode("utf-8", "surrogateescape")


def parse_sdp(data: bytes) -> SessionDescription:
    """Parse a session description (CRLF or LF line ends). Raises SdpError with an exact reason."""
    text = data.decode("utf-8", "surrogateescape")
    lines = text.split("\n")
    while lines and not lines[-1].strip(" \t\r"):
        lines.pop()
    sd = SessionDescription()
    for n, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        m = _LINE_RE.fullmatch(line)
        if m is None:
            raise SdpError(f"line {n} is not of the form <type>=<value>")
        t, v = m.group(1), m.group(2)
        if n == 1 and (t, v) != ("v", "0"):
            raise SdpError("the description does not start with v=0")
        if t == "m":
            parts = v.split(" ")
            port = _uint(parts[1].split("/")[0]) if len(parts) >= 4 else None
            if port is None or "" in parts:
                raise SdpError(f"line {n}: invalid m= line")
            if port > 65535:
                raise SdpError(f"line {n}: port {port} is out of range")
            sd.media.append(Media(parts[0], port, parts[2], parts[3:]))
        elif sd.media:
            sd.media[-1].lines.append((t, v))
        else:
            sd.lines.append((t, v))
    if not sd.lines:
        raise SdpError("empty session description")
    return sd


def connection_address(value: str | None, local_host: str | None = None) -> str:
    """The address of a c= value ("IN IP4 192.0.2.1"): an IP literal of the type the line names and, when
    `local_host` is given, of its family (our RTP socket's), never a name to resolve. Raises SdpNegotiationError
    (warn-code 301, or 330 for a multicast address); its message never repeats what the peer sent."""
    if not value:
        raise SdpNegotiationError("the audio stream has no connection address", 301)
    parts = value.split(" ")
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpNegotiationError("the connection line is not IN IP4 or IN IP6 with an address", 301)
    text, slash, _ = parts[2].partition("/")
    try:
        address = ipaddress.ip_address(text) if "%" not in text else None
    except ValueError:
        address = None
    if address is None:
        raise SdpNegotiationError("the connection address is not an IP address (host names are not resolved)", 301)
    if address.is_multicast:
        raise SdpNegotiationError("the connection address is multicast", 330)
    if slash or address.version != (4 if parts[1] == "IP4" else 6):
        raise SdpNegotiationError(f"the connection address is not an {parts[1]} unicast address", 301)
    if local_host is not None and address.version != (6 if ":" in local_host else 4):
        raise SdpNegotiationError(f"the connection address is {parts[1]} and our media is not", 301)
    return str(address)


def reverse_direction(direction: str) -> str:
    return {"sendonly": "recvonly", "recvonly": "sendonly"}.get(direction, direction)


@dataclass(frozen=True)
class Negotiated:
    """The audio stream agreed by an offer/answer."""

    codec: str  # "PCMU" or "PCMA"
    payload_type: int
    dtmf_payload_type: int | None
    remote_host: str
    remote_port: int
    direction: str  # our direction: sendrecv, sendonly (caller on hold), recvonly or inactive
    remote_ptime: int | None = None

    @property
    def sending(self) -> bool:
        return self.direction in ("sendrecv", "sendonly") and self.remote_port != 0 and not self.on_hold_address

    @property
    def on_hold_address(self) -> bool:
        return self.remote_host in ("0.0.0.0", "::")


def _origin(session_id: int, version: int, host: str) -> str:
    family = "IP6" if ":" in host else "IP4"
    return f"- {session_id} {version} IN {family} {host}"


def answer_offer(
    offer: SessionDescription,
    local_host: str,
    local_port: int,
    session_id: int,
    version: int,
    codecs: tuple[str, ...] = ("PCMU", "PCMA"),
    ptime: int = 20,
) -> tuple[SessionDescription, Negotiated]:
    """Answer an offer: raises SdpNegotiationError when no audio stream offers a codec in `codecs` or its
    connection address is unusable (see `connection_address`)."""
    chosen: tuple[int, Media, str, int | None] | None = None
    answer_media: list[Media] = []
    for media in offer.media:
        if chosen is None and media.kind == "audio" and media.port != 0 and media.proto == "RTP/AVP":
            pick = media.codec(codecs)
            if pick is not None:
                dtmf = media.telephone_event()
                chosen = (pick[0], media, pick[1], dtmf)
                formats = [str(pick[0])] + ([str(dtmf)] if dtmf is not None else [])
                lines: list[tuple[str, str]] = [("a", f"rtpmap:{pick[0]} {pick[1]}/8000")]
                if dtmf is not None:
                    lines += [("a", f"rtpmap:{dtmf} telephone-event/8000"), ("a", f"fmtp:{dtmf} 0-15")]
                direction = media.direction or offer.direction or "sendrecv"
                lines += [("a", f"ptime:{ptime}"), ("a", reverse_direction(direction))]
                answer_media.append(Media("audio", local_port, "RTP/AVP", formats, lines))
                continue
        answer_media.append(Media(media.kind, 0, media.proto, media.formats[:1] or ["0"]))
    if chosen is None:
        raise SdpNegotiationError("no audio stream with a supported codec (PCMU, PCMA) in the offer", 305)
    pt, media, codec, dtmf = chosen
    host = connection_address(media.connection or offer.connection, local_host)
    family = "IP6" if ":" in local_host else "IP4"
    answer = SessionDescription(
        lines=[("v", "0"), ("o", _origin(session_id, version, local_host)), ("s", "-"),
               ("c", f"IN {family} {local_host}"), ("t", "0 0")],
        media=answer_media,
    )
    offer_dir = media.direction or offer.direction or "sendrecv"
    negotiated = Negotiated(
        codec=codec, payload_type=pt, dtmf_payload_type=dtmf, remote_host=host, remote_port=media.port,
        direction=reverse_direction(offer_dir), remote_ptime=media.ptime,
    )
    return answer, negotiated


def make_offer(
    local_host: str, local_port: int, session_id: int, version: int = 1,
    codecs: tuple[str, ...] = ("PCMU", "PCMA"), dtmf_payload_type: int = 101, direction: str = "sendrecv",
) -> SessionDescription:
    """An offer of our own (for a re-INVITE sent by us or for tests)."""
    pts = {"PCMU": 0, "PCMA": 8}
    formats = [str(pts[c]) for c in codecs] + [str(dtmf_payload_type)]
    lines = [("a", f"rtpmap:{pts[c]} {c}/8000") for c in codecs]
    lines += [("a", f"rtpmap:{dtmf_payload_type} telephone-event/8000"), ("a", f"fmtp:{dtmf_payload_type} 0-15"),
              ("a", "ptime:20"), ("a", direction)]
    family = "IP6" if ":" in local_host else "IP4"
    return SessionDescription(
        lines=[("v", "0"), ("o", _origin(session_id, version, local_host)), ("s", "-"),
               ("c", f"IN {family} {local_host}"), ("t", "0 0")],
        media=[Media("audio", local_port, "RTP/AVP", formats, lines)],
    )


def accept_answer(answer: SessionDescription, codecs: tuple[str, ...] = ("PCMU", "PCMA"),
                  local_host: str | None = None) -> Negotiated:
    """Read the answer to our own offer (a delayed-offer INVITE answered in the ACK, or an outbound call's 2xx);
    `local_host` is the address of our offer, whose family the answer's connection address must have."""
    for media in answer.media:
        if media.kind != "audio" or media.port == 0:
            continue
        pick = media.codec(codecs)
        if pick is None:
            break
        host = connection_address(media.connection or answer.connection, local_host)
        direction = media.direction or answer.direction or "sendrecv"
        return Negotiated(codec=pick[1], payload_type=pick[0], dtmf_payload_type=media.telephone_event(),
                          remote_host=host, remote_port=media.port, direction=reverse_direction(direction),
                          remote_ptime=media.ptime)
    raise SdpNegotiationError("the answer accepts no audio codec we offered", 305)
