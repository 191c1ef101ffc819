import pytest

from ivr.dtmf.rfc4733 import DtmfEventError, DtmfReceiver, KeyPress, TelephoneEvent, digit_to_event
from ivr.rtp.packet import RtpPacket
from ivr.rtp.pcap import read_udp


def test_payload_round_trip() -> None:
    ev = TelephoneEvent(event=11, end=True, volume=10, duration=1280)
    assert bytes(ev) == b"\x0b\x8a\x05\x00"
    assert TelephoneEvent.parse(bytes(ev)) == ev and ev.digit == "#"


def test_errors() -> None:
    with pytest.raises(DtmfEventError, match="^telephone-event payload is shorter than 4 bytes$"):
        TelephoneEvent.parse(b"\x01\x02")
    with pytest.raises(DtmfEventError, match="^'x' is not a DTMF key$"):
        digit_to_event("x")
    assert digit_to_event("*") == 10 and digit_to_event("d") == 15


@pytest.mark.parametrize(("name", "digit"), [("1", "1"), ("9", "9"), ("star", "*"), ("pound", "#")])
def test_sipp_captures_give_one_key_press_with_duration(name: str, digit: str) -> None:
    rx = DtmfReceiver()
    presses = []
    for d in read_udp(f"/usr/share/sip-tester/dtmf_2833_{name}.pcap"):
        pkt = RtpPacket.parse(d.payload)
        assert bytes(pkt) == d.payload
        kp = rx.feed(pkt.ssrc, pkt.timestamp, pkt.payload)
        if kp:
            presses.append(kp)
    assert [p.digit for p in presses] == [digit]
    assert len(rx.ended) == 1 and rx.ended[0].duration == 2240  # 280 ms, the three end packets counted once


def test_reordered_and_lost_start_packets() -> None:
    rx = DtmfReceiver()
    end = bytes(TelephoneEvent(5, end=True, duration=800))
    assert rx.feed(1, 1000, end) == KeyPress("5", 1000, 800)  # start packets lost: the end still counts once
    assert rx.feed(1, 1000, bytes(TelephoneEvent(5, duration=320))) is None  # a late repeat of the same event
    assert rx.feed(1, 1000, end) is None
    assert rx.feed(1, 2000, bytes(TelephoneEvent(5))) == KeyPress("5", 2000, None)  # same key pressed again
    assert rx.feed(2, 2000, bytes(TelephoneEvent(7))) == KeyPress("7", 2000, None)  # new SSRC
    assert rx.feed(1, 3000, bytes(TelephoneEvent(200))) is None  # not a key
    assert [k.digit for k in rx.ended] == ["5"]


def test_a_replayed_capture_counts_again_but_late_duplicates_do_not() -> None:
    rx = DtmfReceiver()
    start, end = bytes(TelephoneEvent(1)), bytes(TelephoneEvent(1, end=True, duration=800))
    assert rx.feed(9, 500, start, now=10.0) is not None
    assert rx.feed(9, 500, end, now=10.1) is None
    assert rx.feed(9, 500, end, now=10.15) is None  # end retransmit
    assert rx.feed(9, 500, start, now=10.2) is None  # a duplicate shortly after: not a key press
    assert rx.feed(9, 500, start, now=11.0) == KeyPress("1", 500, None)  # the same capture played again
    assert rx.feed(9, 500, bytes(TelephoneEvent(1, duration=160)), now=11.02) is None
