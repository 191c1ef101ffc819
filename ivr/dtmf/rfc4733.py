"""RFC 4733 telephone events: payload parse/serialize and a receiver that reports each key press once.

A sender repeats packets for one event with the same RTP timestamp (the event start), growing the duration, and
sends the end packet three times; a new key press has a new timestamp. The receiver reports a digit on the first
packet of an event it has not seen, and its duration once the end packet arrives.
"""
from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass

from ivr.errors import IvrError

__all__ = ["DtmfEventError", "TelephoneEvent", "DtmfReceiver", "KeyPress", "EVENT_CODES", "digit_to_event"]

#: RFC 4733 section 3.2: event codes 0-15.
EVENT_CODES = "0123456789*#ABCD"


class DtmfEventError(IvrError, ValueError):
    """A telephone-event payload that cannot be parsed."""


def digit_to_event(digit: str) -> int:
    code = EVENT_CODES.find(digit.upper())
    if code < 0 or len(digit) != 1:
        raise DtmfEventError(f"{digit!r} is not a DTMF key")
    return code


@dataclass(frozen=True)
class TelephoneEvent:
    event: int
    end: bool = False
    volume: int = 10  # power level in -dBm0 (0..63)
    duration: int = 0  # in timestamp units

    @classmethod
    def parse(cls, data: bytes) -> TelephoneEvent:
        if len(data) < 4:
            raise DtmfEventError("telephone-event payload is shorter than 4 bytes")
        event, flags, duration = struct.unpack_from("!BBH", data)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def __bytes__(self) -> bytes:
        return struct.pack("!BBH", self.event, (0x80 if self.end else 0) | (self.volume & 0x3F), self.duration)

    @property
    def digit(self) -> str | None:
        return EVENT_CODES[self.event] if self.event < len(EVENT_CODES) else None


@dataclass(frozen=True)
class KeyPress:
    digit: str
    timestamp: int  # RTP timestamp of the event start
    duration: int | None = None  # timestamp units, known once the end packet arrived


class DtmfReceiver:
    """Turns telephone-event packets into key presses, each reported once despite repeats and retransmits."""

    #: A start packet of an event that ended this long ago (seconds) is a new key press with a reused timestamp
    #: (a replayed capture, as SIPp's play_pcap_audio does), never a network duplicate.
    replay_gap = 0.3

    def __init__(self, remember: int = 16) -> None:
        self._seen: OrderedDict[tuple[int, int], bool] = OrderedDict()  # (ssrc, timestamp) -> ended
        self._ended_at: dict[tuple[int, int], float] = {}
        self._remember = remember
        self.ended: list[KeyPress] = []

    def feed(self, ssrc: int, timestamp: int, payload: bytes, now: float | None = None) -> KeyPress | None:
        """Feed one packet's payload; returns a KeyPress when a new key press starts. Raises DtmfEventError.

        `now` (seconds, any clock) lets a replayed event with an old timestamp count again after `replay_gap`.
        """
        ev = TelephoneEvent.parse(payload)
        digit = ev.digit
        if digit is None:
            return None
        key = (ssrc, timestamp)
        if key in self._seen:
            ended_at = self._ended_at.get(key)
            replay = (now is not None and ended_at is not None and not ev.end
                      and now - ended_at > self.replay_gap)
            if not replay:
                if ev.end and not self._seen[key]:
                    self._seen[key] = True
                    self._mark_end(key, now)
                    self.ended.append(KeyPress(digit, timestamp, ev.duration))
                elif ev.end:
                    self._mark_end(key, now)
                return None
            del self._seen[key]
            self._ended_at.pop(key, None)
        self._seen[key] = ev.end
        while len(self._seen) > self._remember:
            old, _ = self._seen.popitem(last=False)
            self._ended_at.pop(old, None)
        if ev.end:
            self._mark_end(key, now)
            self.ended.append(KeyPress(digit, timestamp, ev.duration))
        return KeyPress(digit, timestamp, ev.duration if ev.end else None)

    def _mark_end(self, key: tuple[int, int], now: float | None) -> None:
        if now is not None:
            self._ended_at[key] = now
