import pytest
from torture import message

from ivr.sip.message import parse_message
from ivr.sip.sdp import SdpError, SdpNegotiationError, answer_offer, make_offer, parse_sdp
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
