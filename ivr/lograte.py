"""Rate-limited logging for lines that can repeat per packet or per request (a flood, a broken peer).

`RateLimitedLog(logger)` logs the first line of a key, then at most one line per key per `interval_s`: the lines
held back meanwhile are counted, and the key's next line ends with "(N more like this)". `flush()`, called now and
then by the owner and when it stops, reports what a key that has gone quiet held back. Memory and output stay
bounded whatever a sender does: beyond `max_keys` keys at once, new keys' lines are only counted, and `flush()`
reports them in one line. Every line held back is counted in `suppressed_lines` (by logger name) for /metrics.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

__all__ = ["RateLimitedLog", "suppressed_lines"]

#: lines held back by every RateLimitedLog of the process, by logger name
suppressed_lines: Counter[str] = Counter()


@dataclass
class _Key:
    since: float  # when the key's last line was logged
    held: int = 0  # lines held back since then; the last one is kept to be reported by flush()
    level: int = logging.INFO
    msg: str = ""
    args: tuple[object, ...] = field(default_factory=tuple)


class RateLimitedLog:
    """One line per key per `interval_s` on `log`, with counts of what was held back."""

    def __init__(self, log: logging.Logger, interval_s: float = 10.0, *, max_keys: int = 100,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.interval_s = interval_s
        self.max_keys = max_keys
        self.clock = clock
        self._keys: dict[Hashable, _Key] = {}
        self._overflow = 0  # lines of keys beyond max_keys since the last flush
        self._flushed_at = float("-inf")

    def __call__(self, key: Hashable, level: int, msg: str, *args: object,
                 exc_info: bool | BaseException = False) -> bool:
        """Log `msg % args` at `level`, unless `key` had a line less than `interval_s` ago (then it is counted and
        reported later). True when the line was logged."""
        if not self.log.isEnabledFor(level):
            return False
        now = self.clock()
        seen = self._keys.get(key)
        if seen is not None and now - seen.since < self.interval_s:
            seen.held += 1
            seen.level, seen.msg, seen.args = level, msg, args
            self._hold()
            return False
        if seen is None and len(self._keys) >= self.max_keys:
            if now - self._flushed_at >= self.interval_s:
                self.flush()  # makes room if keys have gone quiet
            if len(self._keys) >= self.max_keys:
                self._overflow += 1
                self._hold()
                return False
        self._keys[key] = _Key(now)
        self._emit(level, msg, args, seen.held if seen is not None else 0, exc_info)
        return True

    def flush(self) -> None:
        """Report the lines held back by keys whose last line is `interval_s` old; forget keys gone quiet."""
        now = self._flushed_at = self.clock()
        for key, seen in list(self._keys.items()):
            if now - seen.since < self.interval_s:
                continue
            if seen.held:
                self._emit(seen.level, seen.msg, seen.args, seen.held - 1, False)
                self._keys[key] = _Key(now)
            else:
                del self._keys[key]
        if self._overflow:
            self.log.warning("%d more lines held back (more than %d kinds at once)", self._overflow, self.max_keys)
            self._overflow = 0

    def _hold(self) -> None:
        suppressed_lines[self.log.name] += 1

    def _emit(self, level: int, msg: str, args: tuple[object, ...], more: int,
              exc_info: bool | BaseException) -> None:
        if more:
            self.log.log(level, msg + " (%d more like this)", *args, more, exc_info=exc_info)
        else:
            self.log.log(level, msg, *args, exc_info=exc_info)
