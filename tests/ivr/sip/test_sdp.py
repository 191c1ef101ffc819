import pytest
from torture import message

from ivr.sip.message import parse_message
from ivr.sip.sdp import (SdpError, SdpNegotiationError, answer_offer, connection_address, make_offer, parse_sdp,
                         warning)
from test_message import SIPP_INVITE

OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 18 8 0 96\r\na=rtpmap:18 G729/8000\r\na=rtpmap:96 telephone-event/8000\r\n"
    b"a=fmtp:96 0-16\r\na=ptime:30\r\na=sendrecv\r\nm=video 40002 RTP/AVP 31\r\n"
)


def test_captured_sdp_round_trips() -> None:
    body = parse_message(SIPP_INVITE).body
    sd = parse_sdp(body)
    assert bytes(sd) == body
    media = sd.media[0]
    assert (media.kind, media.port, media.formats) == ("audio", 36000, ["8", "101"])
    assert media.rtpmap() == {8: ("PCMA", 8000), 101: ("telephone-event", 8000)}


def test_answer_picks_first_supported_codec_keeps_event_pt_and_rejects_video() -> None:
    answer, neg = answer_offer(parse_sdp(OFFER), "192.0.2.9", 20000, session_id=7, version=1)
    assert (neg.codec, neg.payload_type, neg.dtmf_payload_type) == ("PCMA", 8, 96)
    assert (neg.remote_host, neg.remote_port, neg.remote_ptime, neg.direction) == ("10.0.0.5", 40000, 30, "sendrecv")
    assert bytes(answer) == (
        b"v=0\r\no=- 7 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n"
        b"m=audio 20000 RTP/AVP 8 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\n"
        b"a=fmtp:96 0-15\r\na=ptime:20\r\na=sendrecv\r\nm=video 0 RTP/AVP 31\r\n"
    )


@pytest.mark.parametrize(("offered", "ours", "sending"), [
    ("sendonly", "recvonly", False), ("recvonly", "sendonly", True), ("inactive", "inactive", False),
    ("sendrecv", "sendrecv", True),
])
def test_direction_is_mirrored(offered: str, ours: str, sending: bool) -> None:
    offer = make_offer("10.0.0.5", 40000, 1, direction=offered)
    answer, neg = answer_offer(offer, "127.0.0.1", 20000, 1, 2)
    assert neg.direction == ours and answer.media[0].direction == ours and neg.sending is sending


def test_old_style_hold_address_stops_sending() -> None:
    offer = parse_sdp(OFFER.replace(b"c=IN IP4 10.0.0.5", b"c=IN IP4 0.0.0.0"))
    _, neg = answer_offer(offer, "127.0.0.1", 20000, 1, 2)
    assert neg.on_hold_address and not neg.sending


def test_pcmu_only_without_events() -> None:
    offer = parse_sdp(OFFER.replace(b"RTP/AVP 18 8 0 96", b"RTP/AVP 0"))
    _, neg = answer_offer(offer, "127.0.0.1", 20000, 1, 1)
    assert (neg.codec, neg.payload_type, neg.dtmf_payload_type) == ("PCMU", 0, None)


def test_torture_sdp_offers_parse() -> None:
    sd = parse_sdp(parse_message(message("esc01")).body)
    _, neg = answer_offer(sd, "127.0.0.1", 20000, 1, 1)
    assert (neg.codec, neg.remote_host, neg.remote_port) == ("PCMU", "192.0.2.1", 49217)


def test_no_usable_codec() -> None:
    offer = parse_sdp(OFFER.replace(b"RTP/AVP 18 8 0 96", b"RTP/AVP 18"))
    with pytest.raises(SdpNegotiationError, match=r"^no audio stream with a supported codec \(PCMU, PCMA\) in the offer$"):
        answer_offer(offer, "127.0.0.1", 20000, 1, 1)


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty session description"),
    (b"x=1\r\n", "the description does not start with v=0"),
    (b"v=0\r\nbad\r\n", "line 2 is not of the form <type>=<value>"),
    (b"v=0\r\nm=audio x RTP/AVP 0\r\n", "line 2: invalid m= line"),
    (b"v=0\r\nm=audio 70000 RTP/AVP 0\r\n", "line 2: port 70000 is out of range"),
])
def test_sdp_errors(data: bytes, reason: str) -> None:
    with pytest.raises(SdpError) as info:
        parse_sdp(data)
    assert str(info.value) == reason


def test_accept_answer_to_our_offer() -> None:
    from ivr.sip.sdp import accept_answer
    neg = accept_answer(parse_sdp(OFFER.replace(b"RTP/AVP 18 8 0 96", b"RTP/AVP 8 96")))
    assert (neg.codec, neg.payload_type, neg.dtmf_payload_type, neg.remote_port) == ("PCMA", 8, 96, 40000)
    with pytest.raises(SdpNegotiationError, match="^the answer accepts no audio codec we offered$"):
        accept_answer(parse_sdp(OFFER.replace(b"RTP/AVP 18 8 0 96", b"RTP/AVP 18")))


def _with_connection(value: str) -> bytes:
    return OFFER.replace(b"c=IN IP4 10.0.0.5", b"c=" + value.encode("utf-8", "surrogateescape"))


@pytest.mark.parametrize(("connection", "reason", "code"), [
    ("IN IP4 %s%s%s%n%n%x", "the connection address is not an IP address (host names are not resolved)", 301),
    ("IN IP4 " + "A" * 7000, "the connection address is not an IP address (host names are not resolved)", 301),
    ("IN IP4 \x00\x00\x00\x00", "the connection address is not an IP address (host names are not resolved)", 301),
    ("IN IP4 北京市朝阳区", "the connection address is not an IP address (host names are not resolved)", 301),
    ("IN IP4 \udcff\udcfe", "the connection address is not an IP address (host names are not resolved)", 301),
    ("IN IP4 hotline.example.org", "the connection address is not an IP address (host names are not resolved)", 301),
    ("IN IP4 999.1.1.1", "the connection address is not an IP address (host names are not resolved)", 301),
    ("IN IP6 fe80::1%eth0", "the connection address is not an IP address (host names are not resolved)", 301),
    ("IN IP4 224.2.1.1/127", "the connection address is multicast", 330),
    ("IN IP4 ::1", "the connection address is not an IP4 unicast address", 301),
    ("IN IP4 10.0.0.5/127", "the connection address is not an IP4 unicast address", 301),
    ("IN IP6 ::1", "the connection address is IP6 and our media is not", 301),
    ("IN IP4", "the connection line is not IN IP4 or IN IP6 with an address", 301),
    ("IN IP4  10.0.0.5", "the connection line is not IN IP4 or IN IP6 with an address", 301),
    ("ATM NSAP 47.0005.80.ffe100", "the connection line is not IN IP4 or IN IP6 with an address", 301),
])
def test_unusable_connection_address_is_refused_without_repeating_it(connection: str, reason: str, code: int) -> None:
    with pytest.raises(SdpNegotiationError) as info:
        answer_offer(parse_sdp(_with_connection(connection)), "127.0.0.1", 20000, 1, 1)
    assert (str(info.value), info.value.warning) == (reason, code)
    assert warning(info.value) == f'{code} - "{reason}"'


def test_connection_address_is_an_ip_literal_of_our_family() -> None:
    assert connection_address("IN IP6 2001:DB8:0:0::1", "::1") == "2001:db8::1"
    assert connection_address("IN IP4 0.0.0.0", "127.0.0.1") == "0.0.0.0"  # hold (RFC 2543 style)
    assert connection_address("IN IP4 192.0.2.7") == "192.0.2.7"
    with pytest.raises(SdpNegotiationError, match="^the connection address is IP4 and our media is not$"):
        connection_address("IN IP4 192.0.2.7", "::1")
    with pytest.raises(SdpNegotiationError, match="^the audio stream has no connection address$"):
        answer_offer(parse_sdp(OFFER.replace(b"c=IN IP4 10.0.0.5\r\n", b"")), "127.0.0.1", 20000, 1, 1)
    from ivr.sip.sdp import accept_answer
    with pytest.raises(SdpNegotiationError, match="^the connection address is not an IP address"):
        accept_answer(parse_sdp(_with_connection("IN IP4 %n%n").replace(b"18 8 0 96", b"0")), local_host="::1")


@pytest.mark.parametrize(("field", "value"), [
    (b"m=audio 40000 ", b"m=audio " + b"9" * 5000 + b" "),  # int() refuses over 4300 digits
    (b"m=audio 40000 ", "m=audio ² ".encode()),  # str.isdigit() takes it, int() does not
])
def test_numbers_beyond_int_are_sdp_errors(field: bytes, value: bytes) -> None:
    with pytest.raises(SdpError, match=r"^line 6: invalid m= line$"):
        parse_sdp(OFFER.replace(field, value, 1))


def test_formats_ptime_and_rates_out_of_range_are_ignored() -> None:
    offer = OFFER.replace(b"RTP/AVP 18 8 0 96", "RTP/AVP ² 999 ".encode() + b"9" * 5000 + b" 0 96")
    offer = offer.replace(b"a=ptime:30", b"a=ptime:" + b"9" * 400).replace(
        b"telephone-event/8000", b"telephone-event/" + b"9" * 5000)
    _, neg = answer_offer(parse_sdp(offer), "127.0.0.1", 20000, 1, 1)
    assert (neg.codec, neg.payload_type, neg.dtmf_payload_type, neg.remote_ptime) == ("PCMU", 0, None, None)


def test_leading_white_space_and_trailing_blank_lines_are_tolerated() -> None:
    """sofia-sip (FreeSWITCH) skips white space before a line's type; FreeSWITCH's own uac_telephone_event test
    sends `  a=fmtp:101 0-11,16`."""
    offer = OFFER.replace(b"a=fmtp:96 0-16", b"  a=fmtp:96 0-16").replace(b"a=sendrecv", b"\t a=recvonly")
    offer += b"\r\n \r\n"
    sd = parse_sdp(offer)
    assert sd.media[0].attributes("fmtp") == ["96 0-16"] and sd.media[0].direction == "recvonly"
    assert bytes(sd) == OFFER.replace(b"a=sendrecv", b"a=recvonly")
    _, neg = answer_offer(sd, "127.0.0.1", 20000, 1, 1)
    assert (neg.dtmf_payload_type, neg.direction) == (96, "sendonly")
    with pytest.raises(SdpError, match="^line 2 is not of the form <type>=<value>$"):
        parse_sdp(b"v=0\r\n  \r\ns=-\r\n")  # a blank line inside is still an error
