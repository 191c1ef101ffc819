"""Expected waits: how fast a group's queue drains, what that means for a caller at a given position, and what
the caller is told.

The product estimate (`drain_wait`) follows the queue ahead of the caller as it is seen to move: agents take the head
at the observed rate, callers ahead hang up at the observed hazard, and callers of a higher class arriving later
overtake. In a small group with few callers ahead, the callers that model says must be taken first are counted off
when each agent is expected to be free (`departures`, from how long its call has lasted, and `kth_departure`): there
the wait hangs on the calls in progress more than on the mean rate. `projected_wait` (staffing and handle times) and
`erlang_c_wait` remain for comparison and planning.
"""
from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ivr.config import AgentGroup
from ivr.queue.model import Agent, AgentState

__all__ = [
    "erlang_c", "erlang_c_wait", "projected_wait", "HandleTimes", "DrainRates", "DrainView", "drain_wait",
    "kth_departure", "departures", "staffing_free_at", "QUANTILES", "FEW_AHEAD", "FEW_AGENTS",
    "BandCalibration", "PositionRegression", "spoken_minutes", "spoken_seconds", "relative_error", "ERROR_FLOOR_S",
]

# With at most FEW_AGENTS staffed and FEW_AHEAD callers ahead of the idle agents, an estimate follows the calls in
# progress (`departures`); with more agents their calls' ages average out and the rate seen says as much (and it
# stays cheap).
FEW_AHEAD = 32
FEW_AGENTS = 64
# The k-th departure is taken where k - this many are expected: 0.5 would be about its median; a little earlier
# measured better (bench/queue_day.py), as a wait told too long for a short one costs more relative error.
DEPARTURE_OFFSET = 0.75
QUANTILES = 4  # points an agent's time until free is represented by (each weighs 1 / QUANTILES of a departure)
ERROR_FLOOR_S = 30.0  # relative errors are taken against max(actual wait, this), so a 2 s wait told 0 s is not 100 %


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
        self._sorted: list[float] = []
        self._levels: dict[int, tuple[float, ...]] = {}  # first longer sample -> the QUANTILES levels from it
        self._sum = 0.0

    def observe(self, seconds: float) -> None:
        if len(self._recent) == self._recent.maxlen:
            old = self._recent[0]
            self._sum -= old
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        self._recent.append(seconds)
        self._sum += seconds
        bisect.insort(self._sorted, seconds)
        self._levels.clear()

    def residuals(self, age_s: float, wrap_s: float, points: int = QUANTILES) -> list[float]:
        """Seconds until an agent `age_s` into a call is free (rest of the talk, then `wrap_s` of wrap-up), as
        `points` quantiles (levels (i + 0.5) / points) of the handle times seen that are longer than the call so
        far; a call longer than all of them is expected to end now (then the wrap-up); the prior mean until any
        were seen."""
        seen = self._sorted
        if not seen:
            return [max(self.prior_s - age_s, wrap_s)] * points
        first = bisect.bisect_right(seen, age_s + wrap_s)
        levels = self._levels.get(first) if points == QUANTILES else None
        if levels is None:
            longer = len(seen) - first
            if not longer:
                return [wrap_s] * points
            levels = tuple(seen[first + (2 * i + 1) * longer // (2 * points)] for i in range(points))
            if points == QUANTILES:
                self._levels[first] = levels
        return [v - age_s for v in levels]

    @property
    def mean(self) -> float:
        return self._sum / len(self._recent) if self._recent else self.prior_s

    def __len__(self) -> int:
        return len(self._recent)


class DrainRates:
    """How one group's queue moves, from what was seen over roughly the last `memory_s` seconds (older seen
    events count exponentially less).

    - `served_per_s`: callers taken by an agent that came free while they waited, per agent-second during which the
      group had callers waiting and no idle agent, times the agents staffed now (the rate the head moves when there
      is a queue; per agent, so a change of staffing counts at once);
    - `abandon_hazard`: hang-ups per second per live caller waiting (patience seen as a constant hazard; booked
      callbacks keep their place but do not hang up);
    - `arrivals_per_s(cls)`: arrivals of a priority class per second.

    The owner calls `advance(now, waiting, live, idle, staffed)` before every change of the queue or its agents,
    with the state that held since the last call, and `served`/`abandoned`/`arrived` for each event.
    """

    def __init__(self, memory_s: float = 900.0) -> None:
        if memory_s <= 0:
            raise ValueError(f"memory must be positive, got {memory_s}")
        self.memory_s = memory_s
        self._t: float | None = None
        self._served = 0.0
        self._backlog_agent_s = 0.0
        self._abandons = 0.0
        self._live_s = 0.0  # live callers waiting x seconds
        self._elapsed_s = 0.0
        self._arrivals: dict[int, float] = {}

    def advance(self, now: float, waiting: int, live: int, idle: int, staffed: int) -> None:
        if self._t is None:
            self._t = now
            return
        dt = now - self._t
        if dt <= 0:
            return
        self._t = now
        keep = math.exp(-dt / self.memory_s)
        span = self.memory_s * (1.0 - keep)  # dt seen through the same forgetting
        self._served *= keep
        self._abandons *= keep
        self._backlog_agent_s = self._backlog_agent_s * keep + (staffed * span if waiting and not idle else 0.0)
        self._live_s = self._live_s * keep + live * span
        self._elapsed_s = self._elapsed_s * keep + span
        for cls in self._arrivals:
            self._arrivals[cls] *= keep

    def served(self) -> None:
        self._served += 1.0

    def abandoned(self) -> None:
        self._abandons += 1.0

    def arrived(self, cls: int) -> None:
        self._arrivals[cls] = self._arrivals.get(cls, 0.0) + 1.0

    def served_per_s(self, staffed: int, prior_handle_s: float, prior_events: float = 5.0) -> float:
        """Seen rate for `staffed` agents, pulled towards one call per `prior_handle_s` per agent (e.g. the mean
        handle time) as if `prior_events` had been seen at that rate, so the prior rules while little was seen."""
        if prior_handle_s <= 0:
            raise ValueError(f"prior handle time must be positive, got {prior_handle_s}")
        return staffed * (self._served + prior_events) / (self._backlog_agent_s + prior_events * prior_handle_s)

    @property
    def abandon_hazard(self) -> float:
        return self._abandons / self._live_s if self._live_s > 1.0 else 0.0

    def arrivals_per_s(self, cls: int) -> float:
        return self._arrivals.get(cls, 0.0) / self._elapsed_s if self._elapsed_s > 1.0 else 0.0


@dataclass(frozen=True)
class DrainView:
    """What a group's queue looks like to an estimate: idle agents, the rate the head is served, the hang-up hazard
    of queued callers and the higher classes that overtake (arrivals per second, seconds they land ahead)."""
    idle: int
    served_per_s: float
    abandon_hazard: float = 0.0
    overtakers: tuple[tuple[float, float], ...] = ()
    departures: tuple[float, ...] = ()

    def wait(self, position: int) -> float:
        """Expected seconds until the caller at `position` (1 = next) is taken by an agent.

        With `departures` (seconds until each staffed agent is next free, QUANTILES points an agent, sorted) the
        callers the fluid model says must be taken first are counted off those instead of at the mean rate."""
        if position < 1:
            raise ValueError(f"position must be >= 1, got {position}")
        if position <= self.idle:
            return 0.0
        t = drain_wait(position - 1 - self.idle, self.served_per_s, self.abandon_hazard, self.overtakers)
        if not self.departures or not math.isfinite(t):
            return t
        agents = len(self.departures) / QUANTILES
        return kth_departure(self.departures, agents / self.served_per_s, t * self.served_per_s)


def drain_wait(ahead: int, served_per_s: float, abandon_hazard: float = 0.0,
               overtakers: tuple[tuple[float, float], ...] = ()) -> float:
    """Expected seconds until a caller with `ahead` callers in front is taken by an agent.

    Callers ahead leave from the head at `served_per_s` and from anywhere at `abandon_hazard` each; then the caller
    waits for the next agent (1 / served_per_s). `overtakers` are (arrivals per second, seconds for which such an
    arrival still lands ahead of this caller) of the higher classes. Fluid model: d(ahead)/dt = -mu - theta*ahead.
    """
    if ahead < 0:
        raise ValueError(f"callers ahead must not be negative, got {ahead}")
    if served_per_s <= 0:
        return math.inf
    mu, theta = served_per_s, abandon_hazard

    def clear(n: float) -> float:
        if theta <= 0:
            return n / mu
        return math.log1p(theta * n / mu) / theta

    t = clear(ahead)
    if overtakers:  # callers who arrive while this one waits and land ahead of it
        t = clear(ahead + sum(rate * min(t, window) for rate, window in overtakers))
    return t + 1.0 / mu


def kth_departure(departures: tuple[float, ...], cycle_s: float, k: float, points: int = QUANTILES,
                  offset: float = DEPARTURE_OFFSET) -> float:
    """Seconds until `k` agents (fractional) have come free, from `departures` (sorted; `points` a agent, each
    weighing 1 / points) and, after it, every `cycle_s` again; the departure counted is number k - offset."""
    if not departures:
        raise ValueError("no departures")
    if cycle_s <= 0:
        raise ValueError(f"cycle must be positive, got {cycle_s}")
    # 1-based fractional index into the stream of departures; a point stands at the middle of its 1 / points
    j = max((k - offset) * points + 0.5, 1.0)
    whole = math.ceil(j)
    n = len(departures)
    cycles = (whole - 1) // n  # the points come again this many times (or fewer) before the one counted
    # by `bound` at least `whole` points have come: as many points once, or every point `cycles` + 1 times
    bound = departures[whole - 1] if whole <= n else departures[-1] + cycles * cycle_s
    events: list[float] = []
    r = 0
    while departures[0] + r * cycle_s <= bound:
        shift = r * cycle_s
        last = n if r <= cycles and whole > n else bisect.bisect_right(departures, bound - shift)
        events += [d + shift for d in departures[:last]]
        r += 1
    events.sort()
    upper = events[whole - 1]
    lower = events[whole - 2] if whole >= 2 else 0.0
    return upper - (whole - j) * (upper - lower)


def departures(handle: HandleTimes, agents: Iterable[Agent], started: Mapping[str, float],
               groups: Mapping[str, AgentGroup], now: float, least_s: float = 1.0) -> tuple[float, ...]:
    """Sorted seconds (at least `least_s`) until each staffed agent is next free, QUANTILES points an agent: an agent
    on a call that `started` when, from the handle times seen longer than it so far (then its wrap-up, the longest
    of its `groups`); an agent in wrap-up when it ends; an idle agent after the whole call it is about to take."""
    points: list[float] = []
    wraps: dict[tuple[str, ...], float] = {}
    residuals, on_call, wrap_up, out = handle.residuals, AgentState.ON_CALL, AgentState.WRAP_UP, AgentState.SIGNED_OUT
    for a in agents:
        state = a.state
        if state == wrap_up:
            points += [a.wrap_up_until - now] * QUANTILES
        elif state != out:
            wrap = wraps.get(a.groups)
            if wrap is None:
                wrap = wraps[a.groups] = max(groups[g].wrap_up_s for g in a.groups)
            points += residuals(now - started.get(a.agent_id, now) if state == on_call else 0.0, wrap)
    points.sort()
    short = bisect.bisect_left(points, least_s)
    points[:short] = [least_s] * short
    return tuple(points)


def staffing_free_at(agents: Iterable[Agent], started: Mapping[str, float], now: float, handle_s: float) -> list[float]:
    """When each staffed agent is free again for `projected_wait`: a call when it reaches the mean handle time (one
    already past it soon, not at once), a wrap-up when it ends, an idle agent now."""
    free_at: list[float] = []
    for a in agents:
        if a.state == AgentState.ON_CALL:
            free_at.append(max(started.get(a.agent_id, now) + handle_s, now + handle_s * 0.25))
        elif a.state == AgentState.WRAP_UP:
            free_at.append(a.wrap_up_until)
        elif a.state == AgentState.AVAILABLE:
            free_at.append(now)
    return free_at


class BandCalibration:
    """Online correction of an estimate by position band (1, 2-3, 4-7, ...): the median ratio actual / estimate
    of the last `window` answered calls of the band whose estimate was at least `min_estimate_s`."""

    def __init__(self, window: int = 500, min_count: int = 20, min_estimate_s: float = 30.0) -> None:
        self.window, self.min_count, self.min_estimate_s = window, min_count, min_estimate_s
        self._ratios: dict[tuple[str, int], deque[float]] = {}
        self._factor: dict[tuple[str, int], float] = {}

    def factor(self, group: str, position: int) -> float:
        return self._factor.get((group, position.bit_length()), 1.0)

    def observe(self, group: str, position: int, estimate: float, actual: float) -> None:
        if not math.isfinite(estimate) or estimate < self.min_estimate_s:
            return
        key = (group, position.bit_length())
        ratios = self._ratios.setdefault(key, deque(maxlen=self.window))
        ratios.append(actual / estimate)
        if len(ratios) >= self.min_count and len(ratios) % 10 == 0:
            self._factor[key] = sorted(ratios)[len(ratios) // 2]


class PositionRegression:
    """Seconds of wait per position ahead, per group and position band, from the actual waits of answered callers
    (exponential forgetting: each new observation weighs `1 - keep` of the band's figure)."""

    def __init__(self, keep: float = 0.98) -> None:
        if not 0.0 < keep < 1.0:
            raise ValueError(f"keep must be between 0 and 1, got {keep}")
        self.keep = keep
        self._per_position: dict[tuple[str, int], float] = {}

    def predict(self, group: str, position: int) -> float | None:
        """Expected wait, or None while the band has seen no answered caller."""
        rate = self._per_position.get((group, position.bit_length()))
        return None if rate is None else rate * position

    def observe(self, group: str, position: int, actual: float) -> None:
        key = (group, position.bit_length())
        seen = actual / position
        old = self._per_position.get(key)
        self._per_position[key] = seen if old is None else self.keep * old + (1.0 - self.keep) * seen


def spoken_minutes(wait_s: float) -> int:
    """Whole minutes a caller is told: 0 means "under a minute" (waits below 60 s), else rounded to the nearest
    minute; 0 too when there is no estimate (inf), which the caller is not told at all."""
    if not math.isfinite(wait_s) or wait_s < 60.0:
        return 0
    return int(wait_s / 60.0 + 0.5)


def spoken_seconds(minutes: int, actual_s: float) -> float:
    """The wait a spoken figure stands for, to compare with `actual_s`: "under a minute" is exact for any actual
    wait under 60 s, else it stood for 60 s."""
    if minutes == 0:
        return min(actual_s, 60.0)
    return minutes * 60.0


def relative_error(told_s: float, actual_s: float, floor_s: float = ERROR_FLOOR_S) -> float:
    """|told - actual| / max(actual, floor_s)."""
    return abs(told_s - actual_s) / max(actual_s, floor_s)
