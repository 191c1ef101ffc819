"""SIP over UDP: the endpoint's socket, this machine's address toward a peer, and the Via of a response stamped
with where the request really came from (RFC 3261 18.2.1, RFC 3581 rport)."""
from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Callable

from ivr.sip.headers import parse_via
from ivr.sip.message import Response, SipParseError, split_values

__all__ = ["UdpTransport", "stamp_via"]

logger = logging.getLogger(__name__)

Receiver = Callable[[bytes, tuple[str, int]], None]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, receive: Receiver) -> None:
        self.receive = receive

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.receive(data, addr)

    def error_received(self, exc: Exception) -> None:
        logger.debug("SIP socket error: %s", exc)


class UdpTransport:
    """One UDP socket for SIP: `open()` binds it and hands every datagram to `receive`; `port` is the bound port."""

    def __init__(self, host: str, port: int, receive: Receiver) -> None:
        self.host = host
        self.port = port
        self._receive = receive
        self._transport: asyncio.DatagramTransport | None = None
        self._local_ips: dict[str, str] = {}

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self._receive),
                                                           local_addr=(self.host, self.port))
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._transport is not None:
            try:
                self._transport.sendto(data, addr)
            except OSError as exc:
                logger.debug("SIP send to %s failed: %s", addr, exc)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def route_ip(self, peer: tuple[str, int]) -> str:
        """This machine's address toward `peer`: the listen address, else the route's source address."""
        if self.host not in ("0.0.0.0", "::", ""):
            return self.host
        ip = self._local_ips.get(peer[0])
        if ip is None:
            try:
                with socket.socket(socket.AF_INET6 if ":" in peer[0] else socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.connect((peer[0], peer[1] or 5060))
                    ip = s.getsockname()[0]
            except OSError:
                ip = "127.0.0.1"
            if len(self._local_ips) > 1000:
                self._local_ips.clear()
            self._local_ips[peer[0]] = ip
        return ip


def stamp_via(resp: Response, addr: tuple[str, int]) -> Response:
    """RFC 3261 18.2.1 / RFC 3581: add received= (and rport=) to the top Via of a response."""
    for h in resp.headers:
        if h.key != "via":
            continue
        values = split_values(h.text)
        try:
            via = parse_via(values[0])
        except SipParseError:
            return resp
        top = values[0]
        if via.host != addr[0]:
            top += f";received={addr[0]}"
        if via.has_param("rport") and via.param("rport") is None:
            top = re.sub(r";[ \t]*rport(?=[ \t]*(;|$))", f";rport={addr[1]}", top, count=1)
        h.value = ", ".join([top, *values[1:]])
        return resp
    return resp
