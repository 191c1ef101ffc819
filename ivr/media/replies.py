"""How long callers wait for the system after they have spoken: from the end of their speech (the endpointer's
decision, or the end of a recorded message) to the first frame of the next prompt. Kept as a histogram for
`/metrics` and the longest wait seen."""
from __future__ import annotations

import bisect
import threading

__all__ = ["ReplyTimes", "BUCKETS_S"]

BUCKETS_S = (0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class ReplyTimes:
    """Counts per upper bound in `BUCKETS_S` (the last count is above them all), their sum and the maximum."""

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS_S) + 1)
        self.total_s = 0.0
        self.max_s = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        with self._lock:
            self.counts[bisect.bisect_left(BUCKETS_S, seconds)] += 1
            self.total_s += seconds
            self.max_s = max(self.max_s, seconds)

    @property
    def count(self) -> int:
        return sum(self.counts)

    def over(self, seconds: float) -> int:
        """How many waits were longer than `seconds` (a bucket bound)."""
        return sum(self.counts[BUCKETS_S.index(seconds) + 1:])
