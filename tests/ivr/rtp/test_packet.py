import pytest

from ivr.rtp.packet import RtpError, RtpPacket, is_rtcp
from ivr.rtp.pcap import UdpDatagram, read_udp, write_udp

SIPP_PCAP = "/usr/share/sip-tester/g711a.pcap"


def test_captured_rtp_round_trips_byte_exact() -> None:
    datagrams = list(read_udp(SIPP_PCAP))
    assert len(datagrams) == 236
    first = RtpPacket.parse(datagrams[0].payload)
    assert (first.payload_type, first.marker, len(first.payload)) == (8, True, 240)
    prev = first
    for d in datagrams:
        pkt = RtpPacket.parse(d.payload)
        assert bytes(pkt) == d.payload
    for d in datagrams[1:]:
        pkt = RtpPacket.parse(d.payload)
        assert pkt.sequence_number == (prev.sequence_number + 1) & 0xFFFF
        assert pkt.timestamp == prev.timestamp + 240
        prev = pkt


def test_csrc_extension_padding_round_trip() -> None:
    pkt = RtpPacket(payload_type=0, sequence_number=65535, timestamp=2**32 - 1, ssrc=0xDEADBEEF, marker=True,
                    payload=b"\xff" * 160, csrc=[1, 2], extension_profile=0xBEDE, extension=b"\x10\x01\x00\x00",
                    padding=b"\x00\x00\x03")
    data = bytes(pkt)
    assert len(data) == 12 + 8 + 4 + 4 + 160 + 3
    assert RtpPacket.parse(data) == pkt


@pytest.mark.parametrize(("data", "reason"), [
    (b"\x80\x00", "RTP packet length is less than 12 bytes"),
    (b"\x40" + bytes(11), "RTP packet has version 1, expected 2"),
    (b"\x82" + bytes(11) + bytes(4), "RTP packet is truncated in the CSRC list"),
    (b"\x90" + bytes(11) + b"\x00\x00\x00\x02", "RTP packet is truncated in the header extension"),
    (b"\xa0" + bytes(11) + b"\x00", "RTP packet padding length is invalid"),
    (b"\xa0" + bytes(11) + b"\x05", "RTP packet padding length is invalid"),
])
def test_errors(data: bytes, reason: str) -> None:
    with pytest.raises(RtpError) as info:
        RtpPacket.parse(data)
    assert str(info.value) == reason


def test_rtcp_is_told_apart() -> None:
    assert is_rtcp(b"\x80\xc8" + bytes(6)) and not is_rtcp(bytes(RtpPacket(payload_type=8)))


def test_pcap_write_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    items = [UdpDatagram(1.0 + i * 0.02, ("127.0.0.1", 6000), ("127.0.0.1", 7000), bytes([i]) * (i + 1))
             for i in range(3)]
    write_udp(tmp_path / "x.pcap", items)
    back = list(read_udp(tmp_path / "x.pcap"))
    assert [(d.src, d.dst, d.payload) for d in back] == [(d.src, d.dst, d.payload) for d in items]
    assert [round(d.time, 6) for d in back] == [round(d.time, 6) for d in items]
