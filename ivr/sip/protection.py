"""Front-door protection for the SIP endpoint: allow-list, scanners, size cap, INVITE rate and calls per source.

`Guard.check_datagram()` runs before parsing (cheap checks), `Guard.check_invite()` before a new call is set up.
Each verdict is a short reason string (empty when the datagram may pass). `LogOnce` logs the first occurrence of
each (source, reason) and only counts the rest, so a flood cannot flood the log.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ProtectionConfig", "Guard", "LogOnce", "SCANNER_USER_AGENTS"]

logger = logging.getLogger(__name__)

#: User-Agent fragments of well-known SIP scanners (sipvicious "friendly-scanner", sipcli, sundayddr, ...).
SCANNER_USER_AGENTS = ("friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sipsak", "sundayddr", "iWar",
                       "smap", "VaxSIPUserAgent", "pplsip", "Cisco-SIPGateway/IOS-12.x", "sipptk")
_UA_RE = re.compile(rb"^(?:user-agent|server)[ \t]*:[^\r\n]*", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class ProtectionConfig:
    allow_sources: tuple[str, ...] = ()  # CIDR or addresses; empty = everyone (trunk allow-list otherwise)
    max_message_bytes: int = 8192
    invite_rate: float = 20.0  # new INVITEs per second per source address (token bucket refill)
    invite_burst: int = 40
    max_calls_per_source: int = 0  # 0 = no cap besides the global call limit
    scanner_user_agents: tuple[str, ...] = SCANNER_USER_AGENTS


class LogOnce:
    """Log the first event of each (source, reason), count the others."""

    def __init__(self, log: logging.Logger = logger, limit: int = 10000) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self._log = log
        self._limit = limit

    def __call__(self, source: str, reason: str, action: str = "dropped") -> None:
        key = (source, reason)
        if key not in self.counts:
            if len(self.counts) >= self._limit:
                self.counts.clear()
            self._log.warning("%s from %s: %s (further ones counted, not logged)", action, source, reason)
        self.counts[key] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Guard:
    def __init__(self, config: ProtectionConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._nets = [ipaddress.ip_network(s, strict=False) for s in config.allow_sources]
        self._scanners = [s.lower().encode() for s in config.scanner_user_agents]
        self._buckets: dict[str, tuple[float, float]] = {}  # source -> (tokens, last time)

    def check_datagram(self, data: bytes, source: str) -> str:
        """Reason to drop the datagram before parsing, or ''."""
        if self._nets:
            try:
                addr = ipaddress.ip_address(source)
            except ValueError:
                return "source address is not an IP address"
            if not any(addr in net for net in self._nets):
                return "source is not in the trunk allow-list"
        if len(data) > self.config.max_message_bytes:
            return f"message of {len(data)} bytes is over the {self.config.max_message_bytes}-byte cap"
        head = data[: data.find(b"\r\n\r\n") if b"\r\n\r\n" in data else len(data)]
        for m in _UA_RE.finditer(head):
            ua = m.group(0).lower()
            if any(s in ua for s in self._scanners):
                return "scanner user agent"
        return ""

    def check_invite(self, source: str, calls_from_source: int) -> str:
        """Reason to refuse a new call from `source`, or ''. Takes one token from the source's bucket."""
        cap = self.config.max_calls_per_source
        if cap and calls_from_source >= cap:
            return f"source has {calls_from_source} calls, the cap is {cap}"
        now = self._clock()
        tokens, last = self._buckets.get(source, (float(self.config.invite_burst), now))
        tokens = min(float(self.config.invite_burst), tokens + (now - last) * self.config.invite_rate)
        if tokens < 1.0:
            self._buckets[source] = (tokens, now)
            return "INVITE rate limit"
        self._buckets[source] = (tokens - 1.0, now)
        if len(self._buckets) > 10000:  # forget idle sources
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
        return ""
