"""One call's RTP stream over asyncio UDP: port allocation, source latching, paced send, jitter-buffered receive.

The session is ticked by the shared MediaClock: each tick sends one 20 ms packet (the frame the channel queued,
or silence so NAT bindings stay open) and plays one frame out of the jitter buffer into the inbound queue.
RFC 4733 events are taken out of the stream before the jitter buffer and reported once per key press. Which
sources are the caller's (and where we send) is decided by a SourceLatch (ivr/rtp/source.py).
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from asr.audio import FRAME_MS, FRAME_SAMPLES, SILENCE_FRAME
from ivr.codecs import g711
from ivr.dtmf.rfc4733 import DtmfEventError, DtmfReceiver, TelephoneEvent, digit_to_event
from ivr.errors import IvrError
from ivr.rtp.clock import MediaClock
from ivr.rtp.jitter import JitterBuffer
from ivr.rtp.packet import RtpError, RtpPacket, is_rtcp
from ivr.rtp.source import SourceLatch

__all__ = ["PortAllocator", "RtpSession", "MediaParams", "InboundFrame", "RtpStats", "NoFreePortError"]

logger = logging.getLogger(__name__)
_HEADER = struct.Struct("!BBHII")


class NoFreePortError(IvrError, RuntimeError):
    """Every RTP port of the range is in use."""


class PortAllocator:
    """Hands out even UDP ports of [low, high] round-robin, skipping ports in use."""

    def __init__(self, low: int, high: int) -> None:
        self.low = low + (low % 2)
        self.high = high
        self._next = self.low
        self.in_use: set[int] = set()

    def open(self, host: str) -> socket.socket:
        """A bound non-blocking UDP socket on the next free even port. Raises NoFreePortError."""
        count = (self.high - self.low) // 2 + 1
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _ in range(count):
            port = self._next
            self._next = self.low if self._next + 2 > self.high else self._next + 2
            if port in self.in_use:
                continue
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                continue
            sock.setblocking(False)
            self.in_use.add(port)
            return sock
        raise NoFreePortError(f"no free RTP port in {self.low}-{self.high}")

    def release(self, port: int) -> None:
        self.in_use.discard(port)


@dataclass(frozen=True)
class MediaParams:
    codec: str  # PCMU or PCMA
    payload_type: int
    dtmf_payload_type: int | None
    remote: tuple[str, int]
    sending: bool = True
    receiving: bool = True  # the caller is expected to send (not on hold with us receive-only... or inactive)

    def __post_init__(self) -> None:
        try:  # an IP literal: a name would be resolved by every sendto(), 50 times a second
            ipaddress.ip_address(self.remote[0])
        except ValueError:
            raise ValueError("the RTP remote host is not an IP address") from None


class InboundFrame(NamedTuple):
    audio: bytes
    tick: int
    digits: tuple[str, ...]


@dataclass
class RtpStats:
    sent: int = 0
    send_errors: int = 0
    received: int = 0
    dropped_foreign: int = 0
    dropped_invalid: int = 0
    dtmf_events: int = 0
    inbound_overflow: int = 0


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, session: RtpSession) -> None:
        self.session = session

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.session._received(data, addr)

    def error_received(self, exc: Exception) -> None:
        logger.debug("RTP socket error: %s", exc)


class RtpSession:
    """The media of one call. Create with `open()`, feed with `queue_frame()`, read `inbound`, `close()` at the end."""

    max_inbound = 100  # frames (2 s) kept for a channel that is not reading
    #: Benchmarks set this to a list: every session then logs its send times (perf_counter) and appends the log
    #: here when it closes. None (the default) costs nothing.
    send_logs: list[list[float]] | None = None

    def __init__(self, clock: MediaClock, ports: PortAllocator, params: MediaParams,
                 on_inbound: Callable[[], None] | None = None, rx_timeout_ticks: int = 0,
                 on_rx_timeout: Callable[[], None] | None = None) -> None:
        self.clock = clock
        self.ports = ports
        self.params = params
        self.on_inbound = on_inbound
        self.stats = RtpStats()
        self.jitter = JitterBuffer()
        self.dtmf = DtmfReceiver()
        self.inbound: deque[InboundFrame] = deque()
        self.outbound: deque[bytes | None] = deque()
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.timestamp = random.getrandbits(32)
        self.tick_count = 0
        self.local_port = 0
        self.source = SourceLatch(params.remote)
        self._marker = True
        self._digits: list[str] = []
        self._transport: asyncio.DatagramTransport | None = None
        self._sock: socket.socket | None = None
        self._starting = False  # start() is creating the transport on the socket
        self._encode = g711.encoder(params.codec)
        self._decode = g711.decoder(params.codec)
        self._silence = g711.silence_payload(params.codec)
        self.closed = False
        #: after this many ticks without a packet from the caller (while we expect some), `on_rx_timeout` fires once
        self.rx_timeout_ticks = rx_timeout_ticks
        self.on_rx_timeout = on_rx_timeout
        self._last_rx_tick = 0
        self._send_log: list[float] | None = [] if RtpSession.send_logs is not None else None
        self._events: deque[tuple[bytes, bool]] = deque()  # RFC 4733 payloads (and "starts an event") to send
        self._event_timestamp = 0

    def bind(self, host: str) -> int:
        """Take a port of the range (raises NoFreePortError); returns it. Call `start()` next."""
        self._sock = self.ports.open(host)
        self.local_port = self._sock.getsockname()[1]
        return self.local_port

    async def start(self) -> None:
        """Start receiving and sending (paced by the shared clock)."""
        if self.closed or self._sock is None:
            return
        loop = asyncio.get_running_loop()
        self._starting = True  # until the transport owns the socket, close() must leave the socket to us
        try:
            transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=self._sock)
        finally:
            self._starting = False
        if self.closed:  # the call ended while the endpoint was being created: the transport closes the socket
            transport.close()
            return
        self._transport = transport
        self.clock.subscribe(id(self), self._tick)

    async def open(self, host: str) -> None:
        self.bind(host)
        await self.start()

    def update(self, params: MediaParams) -> None:
        """Apply a new offer/answer (re-INVITE): codec, remote address, direction. Relatching is allowed."""
        if params.codec != self.params.codec:
            self._encode = g711.encoder(params.codec)
            self._decode = g711.decoder(params.codec)
            self._silence = g711.silence_payload(params.codec)
        if params.remote != self.params.remote:
            self.source.reset(params.remote)
        if params.sending and not self.params.sending:
            self._marker = True
        if params.receiving and not self.params.receiving:
            self._last_rx_tick = self.tick_count  # the caller resumes sending: restart the inactivity count
        self.params = params

    def queue_frame(self, frame: bytes | None) -> None:
        self.outbound.append(frame)

    def send_digit(self, digit: str, duration_ms: int = 100) -> bool:
        """Send a key press as RFC 4733 events (replacing the audio for its duration, end packet sent three
        times); False when the call did not negotiate telephone-event."""
        if self.params.dtmf_payload_type is None:
            return False
        event, ticks = digit_to_event(digit), max(1, duration_ms // FRAME_MS)
        payloads = [bytes(TelephoneEvent(event, duration=FRAME_SAMPLES * (k + 1))) for k in range(ticks - 1)]
        payloads += [bytes(TelephoneEvent(event, end=True, duration=FRAME_SAMPLES * ticks))] * 3
        self._events.extend((p, k == 0) for k, p in enumerate(payloads))
        return True

    @property
    def latched(self) -> tuple[str, int] | None:
        """Where the caller's RTP comes from (None before the first packet)."""
        return self.source.latched

    @property
    def remote(self) -> tuple[str, int]:
        return self.source.latched or self.params.remote

    def _tick(self) -> None:
        self.tick_count += 1
        params = self.params
        if (self.rx_timeout_ticks and params.receiving and self.on_rx_timeout is not None
                and self.tick_count - self._last_rx_tick > self.rx_timeout_ticks):
            callback, self.on_rx_timeout = self.on_rx_timeout, None
            callback()  # first, so that nothing below can keep a dead call alive
        frame = self.outbound.popleft() if self.outbound else None
        if params.sending and self._sock is not None and self._transport is not None:
            if self._events and params.dtmf_payload_type is not None:
                payload, starts = self._events.popleft()
                if starts:
                    self._event_timestamp, self._marker = self.timestamp, True
                pt, timestamp = params.dtmf_payload_type, self._event_timestamp
            else:
                payload = self._silence if frame is None else self._encode(frame)
                pt, timestamp = params.payload_type, self.timestamp
            header = _HEADER.pack(0x80, (0x80 if self._marker else 0) | pt, self.seq,
                                  timestamp, self.ssrc)  # RtpPacket's layout, without the object
            try:
                self._sock.sendto(header + payload, self.remote)  # non-blocking, no queueing
                self.stats.sent += 1
                if self._send_log is not None:
                    self._send_log.append(time.perf_counter())
            except OSError as exc:  # includes a full socket buffer: a late packet is a lost packet anyway
                self.stats.send_errors += 1
                if self.stats.send_errors == 1:
                    logger.warning("RTP send to %s:%d failed: %s (further failures of this call counted, not "
                                   "logged)", *self.remote, exc)
            self._marker = False
            self.seq = (self.seq + 1) & 0xFFFF
        self.timestamp = (self.timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
        audio = self.jitter.pop() or SILENCE_FRAME
        if self._digits:
            digits = tuple(self._digits)
            self._digits.clear()
        else:
            digits = ()
        inbound = self.inbound
        if len(inbound) >= self.max_inbound:
            oldest = inbound.popleft()
            self.stats.inbound_overflow += 1
            if oldest.digits:  # the audio of a channel not reading goes; the caller's keys go on to the next frame
                if inbound:
                    inbound[0] = inbound[0]._replace(digits=oldest.digits + inbound[0].digits)
                else:
                    digits = oldest.digits + digits
        inbound.append(InboundFrame(audio, self.tick_count, digits))
        if self.on_inbound is not None:
            self.on_inbound()

    def _received(self, data: bytes, addr: tuple[str, int]) -> None:
        if is_rtcp(data):
            return
        if len(data) > 12 and data[0] == 0x80:  # fast path: no padding, extension or CSRC (what phones send)
            _, b1, seq, timestamp, ssrc = _HEADER.unpack_from(data)
            pt, payload = b1 & 0x7F, data[12:]
        else:
            try:
                pkt = RtpPacket.parse(data)
            except RtpError:
                self.stats.dropped_invalid += 1
                return
            pt, payload, timestamp, ssrc = pkt.payload_type, pkt.payload, pkt.timestamp, pkt.ssrc
            seq = pkt.sequence_number
        if pt != self.params.payload_type and pt != self.params.dtmf_payload_type:
            self.stats.dropped_invalid += 1
            return
        if not self.source.accept((addr[0], addr[1]), ssrc, seq, self.tick_count):
            self.stats.dropped_foreign += 1
            return
        self.stats.received += 1
        self._last_rx_tick = self.tick_count
        if pt == self.params.dtmf_payload_type:
            try:
                press = self.dtmf.feed(ssrc, timestamp, payload, time.monotonic())
            except DtmfEventError:
                self.stats.dropped_invalid += 1
                return
            if press is not None:
                self.stats.dtmf_events += 1
                self._digits.append(press.digit)
            return
        self.jitter.push(ssrc, timestamp, self._decode(payload))

    @property
    def t_ms(self) -> int:
        return self.tick_count * FRAME_MS

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.clock.unsubscribe(id(self))
        if self._send_log and RtpSession.send_logs is not None:
            RtpSession.send_logs.append(self._send_log)
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        elif self._sock is not None and not self._starting:
            self._sock.close()  # (while start() runs, the transport it is creating will close it)
        self._sock = None
        self.ports.release(self.local_port)
        self.outbound.clear()
