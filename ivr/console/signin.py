"""Sign-in guard: failures limited per user name and per client address, each attempt counted before its password
is checked, and the checking (scrypt: about 0.1 s of CPU and 16 MiB each) done a few at a time on low-priority
threads of its own, never on the event loop that paces every call's RTP.

A guess reserves its place in both limits at once, so any number of simultaneous guesses checks at most the limit;
a right password forgives only that user's own failures from the same address (a guesser elsewhere keeps his), and
the failures kept are bounded in number and size whatever names are tried.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from ivr.errors import IvrError

__all__ = ["LoginThrottle", "SignInGate", "SignInRefused", "Attempt", "address_key"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class SignInRefused(IvrError):
    """A sign-in turned away before its password was checked: HTTP `status`, `message`, retry after `retry_after` s."""

    def __init__(self, status: int, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


@dataclass(frozen=True)
class Attempt:
    """One reserved guess: the user name and client address it counts against."""

    user: str
    address: str
    serial: int


class _Failure(NamedTuple):
    at: float
    other: str  # the address of a user's failure, the user of an address's failure
    serial: int


def address_key(host: str | None) -> str:
    """What the per-address limit counts: the IPv4 address, or the /64 of an IPv6 one (one host's share)."""
    try:
        ip = ipaddress.ip_address(host or "")
    except ValueError:
        return (host or "unknown")[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class _Failures:
    """Failures per key, the key with the oldest last failure first, at most `max_keys` keys."""

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self.entries: dict[str, list[_Failure]] = {}

    def live(self, key: str, since: float) -> list[_Failure]:
        recent = [e for e in self.entries.get(key, ()) if e.at > since]
        if not recent:
            self.entries.pop(key, None)
        return recent

    def prune(self, since: float) -> None:
        """Drop keys whose last failure is older than `since` (the keys are kept in order of their last failure)."""
        while self.entries:
            key = next(iter(self.entries))
            if self.entries[key][-1].at > since:
                return
            del self.entries[key]

    def full(self, key: str) -> bool:
        return key not in self.entries and len(self.entries) >= self.max_keys

    def add(self, key: str, entry: _Failure, recent: list[_Failure]) -> None:
        self.entries.pop(key, None)
        self.entries[key] = [*recent, entry]  # re-inserted: the most recent key is last

    def remove(self, key: str, drop: Callable[[_Failure], bool]) -> None:
        kept = [e for e in self.entries.get(key, ()) if not drop(e)]
        if kept:
            self.entries[key] = kept
        else:
            self.entries.pop(key, None)


class LoginThrottle:
    """At most `per_user` failed sign-ins per user name and `per_address` per client address within `window`
    seconds (in this process). `reserve()` before checking a password, then `settle()` or `cancel()`."""

    def __init__(self, per_user: int = 5, per_address: int = 20, window: float = 900.0, max_keys: int = 10_000,
                 clock: Callable[[], float] | None = None) -> None:
        self.per_user, self.per_address, self.window = per_user, per_address, window
        self._clock = clock or time.monotonic
        self._users = _Failures(max_keys)
        self._addresses = _Failures(max_keys)
        self._lock = threading.Lock()
        self._serial = 0

    def __len__(self) -> int:
        """How many user names and addresses have failures on record."""
        return len(self._users.entries) + len(self._addresses.entries)

    def _refusal(self, which: str, recent: list[_Failure], now: float) -> SignInRefused:
        retry = max(1, math.ceil(recent[0].at + self.window - now))  # when the oldest failure counted is forgotten
        return SignInRefused(429, f"too many failed sign-ins {which}; try again in {-(-retry // 60)} minutes", retry)

    def reserve(self, username: str, host: str | None) -> Attempt:
        """Count a guess as failed until it is settled; SignInRefused (429) when the user name or the address is
        at its limit, (503) when the record of failures is full."""
        user, address = username.lower(), address_key(host)
        with self._lock:
            now = self._clock()
            since = now - self.window
            by_user, by_address = self._users.live(user, since), self._addresses.live(address, since)
            if len(by_user) >= self.per_user:
                raise self._refusal("for this user", by_user, now)
            if len(by_address) >= self.per_address:
                raise self._refusal("from this address", by_address, now)
            self._users.prune(since)
            self._addresses.prune(since)
            if self._users.full(user) or self._addresses.full(address):
                log.warning("sign-in refused: failures are on record for %d names and %d addresses",
                            len(self._users.entries), len(self._addresses.entries))
                raise SignInRefused(503, "too many sign-in attempts; try again later", 60)
            self._serial += 1
            self._users.add(user, _Failure(now, address, self._serial), by_user)
            self._addresses.add(address, _Failure(now, user, self._serial), by_address)
            return Attempt(user, address, self._serial)

    def settle(self, attempt: Attempt, ok: bool) -> None:
        """A wrong password stays counted; a right one takes back the reservation and forgives this user's
        earlier failures from the same address, and nothing else."""
        if ok:
            with self._lock:
                self._users.remove(attempt.user, lambda e: e.other == attempt.address)
                self._addresses.remove(attempt.address, lambda e: e.other == attempt.user)

    def cancel(self, attempt: Attempt) -> None:
        """The password was not checked after all: the reservation no longer counts."""
        with self._lock:
            self._users.remove(attempt.user, lambda e: e.serial == attempt.serial)
            self._addresses.remove(attempt.address, lambda e: e.serial == attempt.serial)


def _lower_priority() -> None:
    """Password checks yield the CPU to the media path (Linux nice applies per thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not allowed: the thread count still bounds the work
        pass


_checkers: ThreadPoolExecutor | None = None
_checkers_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """The process's password checkers: half the CPUs (at least one), started on first use."""
    global _checkers
    with _checkers_lock:
        if _checkers is None:
            _checkers = ThreadPoolExecutor(max(1, (os.cpu_count() or 2) // 2), thread_name_prefix="sign-in",
                                           initializer=_lower_priority)
        return _checkers


class SignInGate:
    """At most `in_flight` password checks admitted at a time (queued for the process's checker threads); one
    more is refused at once (503) without being checked."""

    def __init__(self, in_flight: int = 8) -> None:
        self.in_flight = in_flight
        self.admitted = 0
        self.peak = 0  # the most admitted at once
        self.refused = 0

    async def run(self, check: Callable[..., T], *args: object) -> T:
        if self.admitted >= self.in_flight:
            self.refused += 1
            raise SignInRefused(503, "the console is busy signing others in; try again in a moment", 1)
        loop = asyncio.get_running_loop()
        self.admitted += 1
        self.peak = max(self.peak, self.admitted)
        job = _pool().submit(check, *args)
        job.add_done_callback(lambda _: _call_soon(loop, self._finished))  # also when the request is gone
        return await asyncio.wrap_future(job)

    def _finished(self) -> None:
        self.admitted -= 1


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:  # the loop has closed: nothing left to count
        pass
