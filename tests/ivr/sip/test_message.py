from pathlib import Path

import pytest

from ivr.sip.headers import parse_address, parse_cseq, parse_via, validate_request
from ivr.sip.message import Header, Request, Response, SipParseError, parse_message, split_values, unfold

FIXTURES = Path(__file__).resolve().parents[3] / "audio_fixtures" / "sip"
SIPP_INVITE = (FIXTURES / "captures" / "sipp_uac_pcap_invite.sip").read_bytes()


def test_captured_sipp_invite_round_trips_byte_exact() -> None:
    msg = parse_message(SIPP_INVITE)
    assert isinstance(msg, Request)
    assert (msg.method, msg.uri) == ("INVITE", "sip:service@127.0.0.1:35160")
    assert msg.get("content-length") == "189"
    assert msg.body.startswith(b"v=0\r\n") and len(msg.body) == 189
    assert bytes(msg) == SIPP_INVITE


def test_folded_compact_and_odd_spacing_headers() -> None:
    data = (FIXTURES / "rfc4475" / "wsinv.dat").read_bytes()
    msg = parse_message(data)
    assert bytes(msg) == data
    assert msg.get("to") == "sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n"
    assert msg.get("CSEQ") == "0009 INVITE"
    assert msg.get("subject") == ""  # "s :" compact form with an empty value
    assert msg.get_all("via") == [
        "SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw",
        "SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8",
        "SIP  /    2.0   / UDP  192.168.255.111   ; branch= z9hG4bK30239",
    ]
    summary = validate_request(msg)
    assert summary.cseq.number == 9 and summary.max_forwards == 68
    assert summary.to.tag == "1918181833n"
    assert summary.from_.display == 'J Rosenberg \\"'
    assert summary.vias[1].transport == "TCP" and summary.vias[1].branch == "z9hG4bK9ikj8"
    assert summary.contact is not None and summary.contact.param("q") == "0.33"


def test_response_with_empty_reason_round_trips() -> None:
    data = (FIXTURES / "rfc4475" / "noreason.dat").read_bytes()
    msg = parse_message(data)
    assert isinstance(msg, Response) and (msg.status, msg.reason) == (100, "")
    assert bytes(msg) == data


def test_trailing_octets_after_content_length_are_ignored() -> None:
    data = (FIXTURES / "rfc4475" / "dblreq.dat").read_bytes()
    msg = parse_message(data)
    assert msg.body == b""
    assert data.startswith(bytes(msg)) and len(bytes(msg)) < len(data)


@pytest.mark.parametrize(
    ("data", "reason", "status"),
    [
        (b"", "empty message", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n", "no empty line after the header fields", 400),
        (b"OPTIONS  sip:a@b SIP/2.0\r\n\r\n", "malformed request line 'OPTIONS  sip:a@b SIP/2.0'", 400),
        (b"OPTIONS sip:a@b SIP/3.0\r\n\r\n", "unsupported SIP version 'SIP/3.0'", 505),
        (b"SIP/2.0 099 Odd\r\n\r\n", "status code 99 is out of range", 400),
        (b"SIP/2.0 1000 Big\r\n\r\n", "malformed status line 'SIP/2.0 1000 Big'", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\n Via: x\r\n\r\n", "header block starts with a continuation line", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nNo colon here\r\n\r\n", "malformed header line 'No colon here'", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nl: 5\r\nl: 5\r\n\r\nhello", "multiple Content-Length header fields", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nl: -1\r\n\r\n", "invalid Content-Length '-1'", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nl: 9\r\n\r\nabc", "Content-Length 9 is larger than the body (3 bytes)", 400),
    ],
)
def test_parse_errors_have_exact_messages(data: bytes, reason: str, status: int) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert str(info.value) == reason
    assert info.value.status == status


def test_built_message_serializes_canonically() -> None:
    resp = Response(status=200, reason="OK", headers=[Header("Via", "SIP/2.0/UDP h;branch=z9hG4bK1")])
    resp.add("Content-Length", "0")
    assert bytes(resp) == b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n"
    resp.set("Content-Length", "5")
    resp.body = b"hello"
    assert bytes(resp).endswith(b"Content-Length: 5\r\n\r\nhello")
    assert resp.count("Content-Length") == 1


def test_helpers() -> None:
    assert unfold("a\r\n  b\r\n\tc ") == "a b c"
    assert split_values('"a, b" <sip:x>, <sip:y,z>;p=1, w') == ['"a, b" <sip:x>', "<sip:y,z>;p=1", "w"]
    assert parse_cseq("12 INVITE").number == 12
    via = parse_via("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKx;rport")
    assert (via.host, via.port, via.branch, via.has_param("rport")) == ("10.0.0.1", 5070, "z9hG4bKx", True)
    addr = parse_address('"Li Lei" <sip:13800138000@sbc.example.cn;user=phone>;tag=ab', "From")
    assert (addr.display, addr.uri, addr.tag) == ("Li Lei", "sip:13800138000@sbc.example.cn;user=phone", "ab")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("12", "invalid CSeq '12'"),
        ("4294967296 INVITE", "CSeq number is out of range"),
    ],
)
def test_cseq_errors(value: str, reason: str) -> None:
    with pytest.raises(SipParseError, match=f"^{reason}$"):
        parse_cseq(value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('"unterminated <sip:a@b>', "unterminated quoted string in To"),
        ("Bell, Alexander <sip:a@b>", "invalid display name in To"),
        ("< sip:a@b >", "invalid URI in To"),
        ("<sip:a@b>;;", "invalid parameter '' in To"),
        ("sip:a@b?Route=x", "a URI with header fields must be enclosed in <> in To"),
    ],
)
def test_address_errors(value: str, reason: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_address(value, "To")
    assert str(info.value) == reason
