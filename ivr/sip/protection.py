"""Front-door protection for the SIP endpoint: allow-list, scanners, size cap, INVITE rates and calls per source.

`Guard.check_datagram()` runs before parsing (cheap checks), `Guard.check_invite()` before a new call is set up.
Each says why not with a `Refusal` (a short `kind` for metrics, a `reason` for the log), or None to let it pass.

New calls are limited by token buckets: one per source address (`invite_rate`/s, up to `invite_burst` at once)
and one for all sources together (`global_invite_rate`, `global_invite_burst`), which protects the media of the
calls in progress. Trusted sources (the trunk, an SBC, Kamailio in front: every call of a carrier comes from one
address) are allowed even outside the allow-list and have no per-source limits unless `trusted_invite_rate` is
set; the global limit applies to them too. A source refused by its own limit takes no token from the global bucket,
so one flooding source cannot use up the others' share.
"""
from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ProtectionConfig", "Guard", "Refusal", "SCANNER_USER_AGENTS"]

#: User-Agent fragments of well-known SIP scanners (sipvicious "friendly-scanner", sipcli, sundayddr, ...).
SCANNER_USER_AGENTS = ("friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sipsak", "sundayddr", "iWar",
                       "smap", "VaxSIPUserAgent", "pplsip", "Cisco-SIPGateway/IOS-12.x", "sipptk")
_UA_RE = re.compile(rb"^(?:user-agent|server)[ \t]*:[^\r\n]*", re.IGNORECASE | re.MULTILINE)
_IDLE_S = 60.0  # a source's bucket is forgotten after this long without an INVITE (once there are many)


@dataclass(frozen=True)
class ProtectionConfig:
    allow_sources: tuple[str, ...] = ()  # addresses or CIDRs allowed to send; empty = everyone
    trusted_sources: tuple[str, ...] = ()  # the trunk/proxy: allowed, no per-source limits by default
    max_message_bytes: int = 8192
    invite_rate: float = 20.0  # new INVITEs per second per untrusted source (token bucket refill)
    invite_burst: int = 40
    trusted_invite_rate: float = 0.0  # per trusted source; 0 = no per-source limit
    trusted_invite_burst: int = 200
    global_invite_rate: float = 100.0  # all sources together; 0 = no global limit
    global_invite_burst: int = 200
    max_calls_per_source: int = 0  # concurrent calls per untrusted source; 0 = no cap besides the call limit
    scanner_user_agents: tuple[str, ...] = SCANNER_USER_AGENTS


@dataclass(frozen=True)
class Refusal:
    """Why a datagram is dropped or a new call refused: `kind` labels the metric, `reason` is the log's text."""

    kind: str  # allow_list, too_big, scanner, source_calls, source_rate, global_rate
    reason: str


class _Bucket:
    """A token bucket: `rate` tokens a second, at most `burst`."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.last = self.burst, now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class Guard:
    def __init__(self, config: ProtectionConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._allowed = [ipaddress.ip_network(s, strict=False) for s in config.allow_sources]
        self._trusted = [ipaddress.ip_network(s, strict=False) for s in config.trusted_sources]
        self._scanners = [s.lower().encode() for s in config.scanner_user_agents]
        self._buckets: dict[str, _Bucket] = {}  # source -> its INVITE bucket
        self._global = _Bucket(config.global_invite_rate, config.global_invite_burst, clock())
        self._trust_cache: dict[str, bool] = {}

    def trusted(self, source: str) -> bool:
        """Whether `source` is one of the trusted addresses (the trunk, a proxy)."""
        known = self._trust_cache.get(source)
        if known is None:
            known = _within(source, self._trusted)
            if len(self._trust_cache) > 10000:
                self._trust_cache.clear()
            self._trust_cache[source] = known
        return known

    def check_datagram(self, data: bytes, source: str) -> Refusal | None:
        """Why to drop the datagram before parsing, or None. A trusted proxy's requests are not screened for
        scanner User-Agents: it relays callers' requests as they came (it screens them itself), and a request it
        relayed that went unanswered would look to it like a dead node."""
        trusted = self.trusted(source)
        if self._allowed and not trusted and not _within(source, self._allowed):
            return Refusal("allow_list", "source is not in the trunk allow-list")
        if len(data) > self.config.max_message_bytes:
            return Refusal("too_big", f"message of {len(data)} bytes is over the "
                                      f"{self.config.max_message_bytes}-byte cap")
        if trusted:
            return None
        head = data[: data.find(b"\r\n\r\n") if b"\r\n\r\n" in data else len(data)]
        for m in _UA_RE.finditer(head):
            ua = m.group(0).lower()
            if any(s in ua for s in self._scanners):
                return Refusal("scanner", "scanner user agent")
        return None

    def check_invite(self, source: str, calls_from_source: int) -> Refusal | None:
        """Why to refuse a new call from `source`, or None. Takes a token from the source's bucket (if it has one),
        then from the global bucket."""
        cfg = self.config
        trusted = self.trusted(source)
        cap = 0 if trusted else cfg.max_calls_per_source
        if cap and calls_from_source >= cap:
            return Refusal("source_calls", f"source has {calls_from_source} calls, the cap is {cap}")
        now = self._clock()
        rate, burst = (cfg.trusted_invite_rate, cfg.trusted_invite_burst) if trusted else (cfg.invite_rate,
                                                                                           cfg.invite_burst)
        if rate > 0:
            bucket = self._buckets.get(source)
            if bucket is None:
                if len(self._buckets) > 10000:  # forget idle sources
                    self._buckets = {k: b for k, b in self._buckets.items() if now - b.last < _IDLE_S}
                bucket = self._buckets[source] = _Bucket(rate, burst, now)
            if not bucket.take(now):
                return Refusal("source_rate", "INVITE rate limit")
        if cfg.global_invite_rate > 0 and not self._global.take(now):
            return Refusal("global_rate", f"global INVITE rate limit ({cfg.global_invite_rate:g}/s)")
        return None


def _within(source: str, nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        addr = ipaddress.ip_address(source)
    except ValueError:
        return False
    return any(addr in net for net in nets)
