"""PROTOS-style malformed INVITEs for the soak run: one field of a valid INVITE with SDP replaced by a hostile value.

The classes follow the PROTOS c07-sip test groups (overflows, format strings, integer edge cases, control and
non-ASCII bytes, CRLF injection, an empty field), applied to the request line, the headers and the SDP body. The
messages are made here, deterministically from a seed; none of PROTOS' own data is used.
"""
from __future__ import annotations

import random
from collections.abc import Iterator

__all__ = ["FIELDS", "PAYLOADS", "invite", "malformed"]

PAYLOADS: dict[str, list[bytes]] = {
    "overflow": [b"a" * n for n in (128, 1024, 4096, 16384)],
    "overflow-space": [b" " * n for n in (128, 1024, 8192)],
    "format": [b"%s%s%s%s%s%s", b"%n%n%n%n", b"%x" * 64, b"%99999999999s", b"%.1024d"],
    "integer": [b"-1", b"0", b"4294967296", b"-2147483649", b"99999999999999999999", b"0x7fffffff", b"1e9"],
    "control": [b"\x00", b"\x00" * 64, b"\x1b[2J\x1b[31m", b"\x7f\x08\x07", b"\t\t"],
    "non-ascii": ["北京市朝阳区".encode(), b"\xff\xfe\xfd", b"\xc3\x28", "𝄞".encode("utf-16")],
    "crlf": [b"x\r\nX-Injected: 1", b"\r\n\r\n", b"\n", b"\r"],
    "empty": [b""],
}

_TEMPLATE = (
    "INVITE sip:{ruri_user}@{host}:{port} SIP/{version}\r\n"
    "Via: SIP/2.0/UDP {via_host}:{src};branch=z9hG4bK{branch};rport\r\n"
    "Max-Forwards: {max_forwards}\r\n"
    "From: \"{from_name}\" <sip:{from_user}@{via_host}>;tag={from_tag}\r\n"
    "To: <sip:12345@{host}>\r\n"
    "Call-ID: {call_id}\r\n"
    "CSeq: {cseq} {cseq_method}\r\n"
    "Contact: <sip:{from_user}@{via_host}:{src}>\r\n"
    "Expires: {expires}\r\n"
    "Content-Type: {content_type}\r\n"
    "Content-Length: {content_length}\r\n\r\n"
)
_SDP = (
    "v={sdp_version}\r\no=- {sdp_session} 1 IN IP4 {sdp_origin}\r\ns={sdp_name}\r\nc=IN IP4 {sdp_addr}\r\n"
    "t=0 0\r\nm=audio {sdp_port} RTP/AVP {sdp_formats}\r\na=rtpmap:0 {sdp_codec}/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 {sdp_fmtp}\r\na={sdp_direction}\r\n"
)
DEFAULTS = dict(
    ruri_user="12345", version="2.0", via_host="127.0.0.1", max_forwards="70", from_name="caller",
    from_user="13800138000", cseq="1", cseq_method="INVITE", expires="60", content_type="application/sdp",
    sdp_version="0", sdp_session="1", sdp_origin="127.0.0.1", sdp_name="-", sdp_addr="127.0.0.1",
    sdp_port="40000", sdp_formats="0 101", sdp_codec="PCMU", sdp_fmtp="0-15", sdp_direction="sendrecv",
)
FIELDS = [*DEFAULTS, "branch", "from_tag", "call_id", "content_length"]


def invite(host: str, port: int, src: int, n: int, **values: bytes) -> bytes:
    """A valid INVITE with SDP (call `n`), with any field replaced by the raw bytes given for it."""
    marks = {k: f"\x01{k}\x01" for k in values}
    fields = {**DEFAULTS, "branch": f"soak{n}", "from_tag": f"t{n}", "call_id": f"soak-{n}@127.0.0.1", **marks}
    body = _fill(_SDP.format(**fields).encode(), values)
    fields["content_length"] = marks.get("content_length", str(len(body)))
    return _fill(_TEMPLATE.format(host=host, port=port, src=src, **fields).encode(), values) + body


def _fill(text: bytes, values: dict[str, bytes]) -> bytes:
    for k, v in values.items():
        text = text.replace(f"\x01{k}\x01".encode(), v)
    return text


def malformed(host: str, port: int, src: int, seed: int = 1) -> Iterator[tuple[str, bytes]]:
    """Endless (label, message) pairs: every field meets every payload class, in a seeded shuffle."""
    rng = random.Random(seed)
    n = 0
    while True:
        cases = [(f, c, p) for f in FIELDS for c, ps in PAYLOADS.items() for p in ps]
        rng.shuffle(cases)
        for field, cls, payload in cases:
            n += 1
            yield f"{field}/{cls}", invite(host, port, src, n, **{field: payload})
