"""RTP packets (RFC 3550 section 5.1): parse() and __bytes__ with byte-exact round trips."""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ivr.errors import IvrError

__all__ = ["RtpError", "RtpPacket", "RTP_HEADER_SIZE", "is_rtcp"]

RTP_HEADER_SIZE = 12
_HEADER = struct.Struct("!BBHII")


class RtpError(IvrError, ValueError):
    """A datagram that is not a usable RTP packet."""


def is_rtcp(data: bytes) -> bool:
    """True for RTCP packet types 192-223 (RFC 5761 section 4), which share the first octets with RTP."""
    return len(data) >= 2 and 192 <= data[1] <= 223


@dataclass
class RtpPacket:
    payload_type: int = 0
    sequence_number: int = 0
    timestamp: int = 0
    ssrc: int = 0
    marker: bool = False
    payload: bytes = b""
    csrc: list[int] = field(default_factory=list)
    extension_profile: int | None = None
    extension: bytes = b""
    padding: bytes = b""  # the padding octets, the last of which holds their count

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one RTP packet. Raises RtpError with an exact reason."""
        if len(data) < RTP_HEADER_SIZE:
            raise RtpError("RTP packet length is less than 12 bytes")
        b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
        version = b0 >> 6
        if version != 2:
            raise RtpError(f"RTP packet has version {version}, expected 2")
        pos = RTP_HEADER_SIZE
        cc = b0 & 0x0F
        if len(data) < pos + 4 * cc:
            raise RtpError("RTP packet is truncated in the CSRC list")
        csrc = list(struct.unpack_from(f"!{cc}I", data, pos))
        pos += 4 * cc
        ext_profile = None
        ext = b""
        if b0 & 0x10:
            if len(data) < pos + 4:
                raise RtpError("RTP packet is truncated in the header extension")
            ext_profile, words = struct.unpack_from("!HH", data, pos)
            pos += 4
            if len(data) < pos + 4 * words:
                raise RtpError("RTP packet is truncated in the header extension")
            ext = data[pos : pos + 4 * words]
            pos += 4 * words
        end = len(data)
        padding = b""
        if b0 & 0x20:
            count = data[-1]
            if count == 0 or count > end - pos:
                raise RtpError("RTP packet padding length is invalid")
            padding = data[end - count :]
            end -= count
        return cls(
            payload_type=b1 & 0x7F, sequence_number=seq, timestamp=ts, ssrc=ssrc, marker=bool(b1 & 0x80),
            payload=data[pos:end], csrc=csrc, extension_profile=ext_profile, extension=ext, padding=padding,
        )

    def __bytes__(self) -> bytes:
        b0 = 0x80 | (0x20 if self.padding else 0) | (0x10 if self.extension_profile is not None else 0)
        b0 |= len(self.csrc)
        b1 = (0x80 if self.marker else 0) | self.payload_type
        out = [_HEADER.pack(b0, b1, self.sequence_number, self.timestamp, self.ssrc)]
        if self.csrc:
            out.append(struct.pack(f"!{len(self.csrc)}I", *self.csrc))
        if self.extension_profile is not None:
            out.append(struct.pack("!HH", self.extension_profile, len(self.extension) // 4) + self.extension)
        out.append(self.payload)
        out.append(self.padding)
        return b"".join(out)
