"""Expected waits: Erlang C for a new arrival and a staffing projection for a caller at a given position."""
from __future__ import annotations

import heapq
import math
from collections import deque

__all__ = ["erlang_c", "erlang_c_wait", "projected_wait", "HandleTimes"]


def erlang_c(agents: int, load: float) -> float:
    """Probability that an arrival waits (Erlang C), `load` = arrival rate x mean handle time in erlangs."""
    if agents <= 0:
        return 1.0
    if load >= agents:
        return 1.0
    term = 1.0
    total = 1.0
    for k in range(1, agents):
        term *= load / k
        total += term
    top = term * load / agents * agents / (agents - load)
    return top / (total + top)


def erlang_c_wait(agents: int, arrivals_per_s: float, handle_s: float) -> float:
    """Mean wait in seconds of a new arrival in an M/M/N queue (inf when overloaded)."""
    load = arrivals_per_s * handle_s
    if agents <= 0 or load >= agents:
        return math.inf
    return erlang_c(agents, load) * handle_s / (agents - load)


def projected_wait(now: float, free_at: list[float], position: int, handle_s: float) -> float:
    """Seconds until the caller at `position` (1 = next) is served.

    `free_at` holds, for every staffed agent, when it is expected to be free again (<= now when free);
    each agent that takes a caller is expected back after `handle_s`.
    """
    if position < 1:
        raise ValueError(f"position must be >= 1, got {position}")
    if not free_at:
        return math.inf
    heap = [max(now, t) for t in free_at]
    heapq.heapify(heap)
    n = len(heap)
    # whole rounds at once so long queues stay cheap
    rounds, rest = divmod(position - 1, n)
    t = 0.0
    if rounds:
        heap = [x + rounds * handle_s for x in heap]
        heapq.heapify(heap)
    for _ in range(rest + 1):
        t = heapq.heappop(heap)
        heapq.heappush(heap, t + handle_s)
    return t - now


class HandleTimes:
    """Observed handle times (talk + wrap-up) over the last `window` calls, with a prior until there are any."""

    def __init__(self, prior_s: float = 240.0, window: int = 200) -> None:
        self.prior_s = prior_s
        self._recent: deque[float] = deque(maxlen=window)
        self._sum = 0.0

    def observe(self, seconds: float) -> None:
        if len(self._recent) == self._recent.maxlen:
            self._sum -= self._recent[0]
        self._recent.append(seconds)
        self._sum += seconds

    @property
    def mean(self) -> float:
        return self._sum / len(self._recent) if self._recent else self.prior_s

    def __len__(self) -> int:
        return len(self._recent)
