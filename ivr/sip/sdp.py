"""SDP (RFC 4566) parse/serialize and the audio offer/answer of RFC 3264 for G.711 and RFC 4733 events.

A description keeps every line in order, so `bytes(parse_sdp(data)) == data` for well-formed input; the typed
accessors read the lines. `answer_offer` picks the first codec of the offer that we support (PCMU or PCMA),
keeps the offer's payload type for telephone-event, mirrors the direction and rejects other media streams
(port 0), as RFC 3264 section 6 requires.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "SdpError", "SdpNegotiationError", "Media", "SessionDescription", "Negotiated", "parse_sdp",
    "answer_offer", "make_offer", "accept_answer", "STATIC_PAYLOAD_TYPES", "reverse_direction",
]

#: RFC 3551 static payload types we can use.
STATIC_PAYLOAD_TYPES = {0: ("PCMU", 8000), 8: ("PCMA", 8000)}
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_LINE_RE = re.compile(r"([a-z])=(.*)")


class SdpError(ValueError):
    """A session description that cannot be parsed."""


class SdpNegotiationError(SdpError):
    """An offer with nothing we can answer (no audio stream with PCMU or PCMA): the INVITE gets 488."""


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
        for fmt in self.formats:
            if fmt.isdigit() and int(fmt) in STATIC_PAYLOAD_TYPES:
                table[int(fmt)] = STATIC_PAYLOAD_TYPES[int(fmt)]
        for value in self.attributes("rtpmap"):
            m = re.fullmatch(r"(\d+)\s+([^/\s]+)/(\d+)(?:/\S+)?\s*", value)
            if m:
                table[int(m.group(1))] = (m.group(2), int(m.group(3)))
        return table

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
        return int(float(values[0])) if values and re.fullmatch(r"\d+(\.\d+)?", values[0]) else None

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
    if lines and lines[-1] == "":
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
            if len(parts) < 4 or not parts[1].split("/")[0].isdigit() or "" in parts:
                raise SdpError(f"line {n}: invalid m= line")
            port = int(parts[1].split("/")[0])
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


def _connection_address(value: str | None) -> str | None:
    if not value:
        return None
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        return None
    return parts[2].split("/")[0]


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
    """Answer an offer: raises SdpNegotiationError when no audio stream offers a codec in `codecs`."""
    chosen: tuple[int, Media, str, int | None] | None = None
    answer_media: list[Media] = []
    for media in offer.media:
        if chosen is None and media.kind == "audio" and media.port != 0 and media.proto == "RTP/AVP":
            table = media.rtpmap()
            pick = None
            for fmt in media.formats:
                if fmt.isdigit() and int(fmt) in table:
                    name, rate = table[int(fmt)]
                    if name.upper() in codecs and rate == 8000:
                        pick = (int(fmt), name.upper())
                        break
            if pick is not None:
                dtmf = next(
                    (int(f) for f in media.formats if f.isdigit() and int(f) in table
                     and table[int(f)][0].lower() == "telephone-event" and table[int(f)][1] == 8000),
                    None,
                )
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
        raise SdpNegotiationError("no audio stream with a supported codec (PCMU, PCMA) in the offer")
    pt, media, codec, dtmf = chosen
    host = _connection_address(media.connection or offer.connection)
    if host is None:
        raise SdpNegotiationError("the audio stream has no usable connection address")
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


def accept_answer(answer: SessionDescription, codecs: tuple[str, ...] = ("PCMU", "PCMA")) -> Negotiated:
    """Read the answer to our own offer (a delayed-offer INVITE answered in the ACK)."""
    for media in answer.media:
        if media.kind != "audio" or media.port == 0:
            continue
        table = media.rtpmap()
        pick = next(((int(f), table[int(f)][0].upper()) for f in media.formats
                     if f.isdigit() and int(f) in table and table[int(f)][0].upper() in codecs
                     and table[int(f)][1] == 8000), None)
        if pick is None:
            break
        dtmf = next((int(f) for f in media.formats if f.isdigit() and int(f) in table
                     and table[int(f)][0].lower() == "telephone-event"), None)
        host = _connection_address(media.connection or answer.connection)
        if host is None:
            raise SdpNegotiationError("the audio stream has no usable connection address")
        direction = media.direction or answer.direction or "sendrecv"
        return Negotiated(codec=pick[1], payload_type=pick[0], dtmf_payload_type=dtmf, remote_host=host,
                          remote_port=media.port, direction=reverse_direction(direction), remote_ptime=media.ptime)
    raise SdpNegotiationError("the answer accepts no audio codec we offered")
