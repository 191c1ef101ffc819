"""Fuzz the SIP parser and the screening: the only exception allowed out of parse is SipParseError."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torture import DIR

from ivr.sip.headers import validate_request
from ivr.sip.message import Request, SipParseError, parse_message
from ivr.sip.screen import screen
from ivr.sip.sdp import SdpError, parse_sdp

SEEDS = [p.read_bytes() for p in sorted(DIR.glob("*.dat"))]


def _check(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except SipParseError:
        pass
    else:
        if isinstance(msg, Request):
            try:
                validate_request(msg)
            except SipParseError:
                pass
        if msg.body:
            try:
                parse_sdp(msg.body)
            except SdpError:
                pass
    screen(data)  # never raises


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.integers(0, 3))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == 0 and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == 1:
            data[pos:pos] = draw(st.sampled_from([b"\r\n", b":", b";", b",", b"<", b">", b'"', b"\\", b" ", b"\x00",
                                                  b"=", b"%", b"\r\n\r\n", b"SIP/2.0", b"l: 99"]))
        elif op == 2:
            end = draw(st.integers(pos, len(data)))
            del data[pos:end]
        else:
            data = data[:pos]
    return bytes(data)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_torture_messages(data: bytes) -> None:
    _check(data)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    _check(data)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["INVITE sip:a@b SIP/2.0", "SIP/2.0 200 OK", "Via: SIP/2.0/UDP h;branch=z9hG4bKa",
                                 "From: <sip:a@b>;tag=1", "To: b <sip:b@c>", "Call-ID: x", "CSeq: 1 INVITE",
                                 "Content-Length: 4", " folded", "", "v: x", "Contact: *", "m: <sip:q>;;"]),
                max_size=12),
       st.binary(max_size=20))
def test_structured_lines(lines: list[str], body: bytes) -> None:
    _check("\r\n".join(lines).encode() + b"\r\n\r\n" + body)
