"""Classic pcap files of UDP datagrams (Ethernet/IPv4/UDP): read captured RTP, write RTP for SIPp's pcap play.

Only what the media tests and tools need: little-endian microsecond pcap, link type Ethernet (1) or Linux cooked
(113), IPv4 without options being written (options are skipped when read).
"""
from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import IvrError

__all__ = ["PcapError", "UdpDatagram", "read_udp", "write_udp"]

_MAGIC_LE = 0xA1B2C3D4


class PcapError(IvrError, ValueError):
    """A file that is not a pcap capture we can read."""


@dataclass(frozen=True)
class UdpDatagram:
    time: float
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes


def _ip(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def read_udp(path: str | Path) -> Iterator[UdpDatagram]:
    """The UDP datagrams of a capture, in file order."""
    data = Path(path).read_bytes()
    if len(data) < 24:
        raise PcapError(f"{path}: too short for a pcap file")
    magic = struct.unpack_from("<I", data)[0]
    if magic == _MAGIC_LE:
        endian = "<"
    elif magic == 0xD4C3B2A1:
        endian = ">"
    else:
        raise PcapError(f"{path}: not a pcap file (magic {magic:#x})")
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    link_len = {1: 14, 113: 16}.get(linktype)
    if link_len is None:
        raise PcapError(f"{path}: unsupported link type {linktype}")
    pos = 24
    while pos + 16 <= len(data):
        sec, usec, incl, _orig = struct.unpack_from(endian + "IIII", data, pos)
        pkt = data[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        ip = pkt[link_len:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        udp = ip[ihl:]
        if len(udp) < 8:
            continue
        sport, dport, length = struct.unpack_from("!HHH", udp)
        yield UdpDatagram(sec + usec / 1e6, (_ip(ip[12:16]), sport), (_ip(ip[16:20]), dport), udp[8:length])


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def write_udp(path: str | Path, datagrams: Iterable[UdpDatagram]) -> None:
    """Write datagrams as an Ethernet/IPv4/UDP pcap file."""
    out = [struct.pack("<IHHiIII", _MAGIC_LE, 2, 4, 0, 0, 65535, 1)]
    for n, d in enumerate(datagrams):
        udp = struct.pack("!HHHH", d.src[1], d.dst[1], 8 + len(d.payload), 0) + d.payload
        src = bytes(int(x) for x in d.src[0].split("."))
        dst = bytes(int(x) for x in d.dst[0].split("."))
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n & 0xFFFF, 0, 64, 17, 0, src, dst)
        ip = header[:10] + struct.pack("!H", _checksum(header)) + header[12:] + udp
        frame = b"\0\0\0\0\0\2" + b"\0\0\0\0\0\1" + b"\x08\x00" + ip
        sec = int(d.time)
        out.append(struct.pack("<IIII", sec, int(round((d.time - sec) * 1e6)), len(frame), len(frame)) + frame)
    Path(path).write_bytes(b"".join(out))
