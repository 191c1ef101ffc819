"""RTP media for SIP calls: packets (`RtpPacket`), the shared 20 ms `MediaClock`, the `JitterBuffer`,
per-call `RtpSession` with port allocation and symmetric latching, and pcap reading/writing.

Exceptions: `RtpError` (ValueError) for unusable packets, `NoFreePortError` when the port range is exhausted.
"""
from ivr.rtp.clock import MediaClock
from ivr.rtp.jitter import JitterBuffer
from ivr.rtp.packet import RtpError, RtpPacket
from ivr.rtp.session import NoFreePortError, PortAllocator, RtpSession

__all__ = ["MediaClock", "JitterBuffer", "RtpError", "RtpPacket", "NoFreePortError", "PortAllocator", "RtpSession"]
