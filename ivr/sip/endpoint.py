"""The SIP endpoint's settings, and what the server's parts (dialogs, REFER) use of the server that runs them."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from ivr.channel.sip import SipChannel
from ivr.lograte import RateLimitedLog
from ivr.rtp.clock import MediaClock
from ivr.rtp.session import PortAllocator
from ivr.sip.headers import RequestSummary
from ivr.sip.message import Request
from ivr.sip.protection import Guard, ProtectionConfig
from ivr.sip.transaction import ServerTransaction, SipTimers, Transactions

__all__ = ["SipServerConfig", "CallHandler", "Endpoint"]

CallHandler = Callable[[SipChannel], Awaitable[None]]


@dataclass(frozen=True)
class SipServerConfig:
    host: str = "0.0.0.0"
    port: int = 5060
    advertised_host: str | None = None  # address put in SDP and Contact; default: the route toward the caller
    rtp_port_min: int = 20000
    rtp_port_max: int = 30000
    max_calls: int = 400
    retry_after: int = 10
    ring_seconds: float = 0.0  # time between 180 Ringing and 200 OK
    timers: SipTimers = field(default_factory=SipTimers)
    protection: ProtectionConfig = field(default_factory=ProtectionConfig)
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    user_agent: str = "hotline-ivr"
    rtp_timeout: float = 60.0  # hang up after this long without RTP from a caller who should be sending (0 = off)


class Endpoint(Protocol):
    """The server as its dialogs see it: settings, media resources, sending and answering, its bookkeeping."""

    config: SipServerConfig
    handler: CallHandler
    clock: MediaClock
    ports: PortAllocator
    guard: Guard
    transactions: Transactions
    rate_log: RateLimitedLog
    draining: bool
    ended_calls: list[tuple[str, str]]

    @property
    def port(self) -> int: ...

    def send(self, data: bytes, addr: tuple[str, int]) -> None: ...

    def local_ip(self, peer: tuple[str, int]) -> str: ...

    def response(self, req: Request, status: int, addr: tuple[str, int], to_tag: str | None = None,
                 extra: list[tuple[str, str]] | None = None, body: bytes = b"") -> bytes: ...

    def new_tx(self, summary: RequestSummary, addr: tuple[str, int]) -> ServerTransaction: ...

    def reject_invite(self, req: Request, summary: RequestSummary, addr: tuple[str, int], status: int,
                      reason: str, extra: list[tuple[str, str]] | None = None, kind: str = "") -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]: ...

    def count(self, name: str) -> None: ...
