"""A simulated hotline day through the queue logic in accelerated time.

~110,000 calls on a two-peak weekday curve (9-11 h and 14-16 h), lognormal handle times (mean ~170 s), wrap-up 15 s,
a fixed staff that saturates at peak, exponential caller patience, callbacks accepted by some callers offered one,
12 % elderly callers (their own desk) and 2 % urgent ones (general desk, ahead of normal callers). With `--shifts`
the general desk is staffed hour by hour to the curve (agents on a call sign out when it ends), capped at --agents.

Prints service level (15 s, 20 s), abandonment, callback share, queue operations per second, and how the wait told at
entry compares with the wait then had, for the product estimate and every candidate estimate computed side by side:

- answered live callers only: relative error |told - actual| / max(actual, 30 s) over callers whose told or actual
  wait was at least 30 s (selected on both, so short waits told long count), mean absolute seconds over all answered,
  and the former figure (callers who waited at least 30 s) for comparison;
- abandoned callers are censored (they would have waited at least as long as they did): counted, with the share
  already past what they were told when they hung up, and the error that shows at least;
- for the product estimate also: what is said (whole minutes / under a minute), the re-estimates announced while
  waiting, each desk apart (the previous estimate, the drain rates alone, beside it), and callbacks (wait told at
  entry versus time until the callback was dialled).
Usage: .venv/bin/python bench/queue_day.py [--calls 110000] [--agents 330] [--seed 1] [--urgent 0.02] [--shifts]
                                          [--scale 0.1 (a small centre: 11,000 calls, 33 + 3 agents)]
"""
from __future__ import annotations

import argparse
import dataclasses
import heapq
import math
import random
import statistics
import time

from ivr.config import AgentGroup
from ivr.queue import Agent, AgentState, CallQueue, Connect, OfferCallback, Priority, QueuePolicy
from ivr.queue.estimate import (
    ERROR_FLOOR_S, BandCalibration, PositionRegression, relative_error, spoken_minutes, spoken_seconds,
)

# share of the day's calls per hour (Beijing 12345-like: quiet night, morning and afternoon peaks)
HOURLY = [0.4, 0.25, 0.2, 0.2, 0.25, 0.5, 1.5, 3.5, 7.0, 8.5, 8.5, 7.0, 5.0, 5.5, 7.5, 8.0, 7.5, 6.5, 5.0, 4.0,
          3.2, 2.6, 1.6, 0.8]

CANDIDATES = ["staffing", "staffing+band (earlier product)", "drain", "drain+abandon",
              "drain+abandon+overtake (previous)", "previous+calls in progress (product)",
              "product+band", "position regression", "blend product/regression"]
PRODUCT, PREVIOUS = 5, 4


def shift_staff(calls: int, most: int, handle_s: float = 185.0) -> list[int]:
    """General agents signed in each hour: the hour's load in erlangs plus 10 %, at least 10, at most `most`."""
    total = sum(HOURLY)
    return [min(most, max(10, math.ceil(calls * w / total / 3600 * handle_s * 1.1))) for w in HOURLY]


def arrivals(rng: random.Random, calls: int) -> list[float]:
    total = sum(HOURLY)
    out: list[float] = []
    for h, w in enumerate(HOURLY):
        n = round(calls * w / total)
        out.extend(h * 3600 + rng.random() * 3600 for _ in range(n))
    return sorted(out)


class Candidates:
    """Every candidate estimate for a caller at entry, and the online corrections fed by answered callers."""

    def __init__(self, q: CallQueue) -> None:
        self.q = q
        self.staff_band = BandCalibration()
        self.drain_band = BandCalibration()
        self.regression = PositionRegression()

    def at_entry(self, call_id: str, group: str, priority: Priority) -> list[float]:
        pos = self.q.position(call_id)
        staffing = self.q.wait_at(group, pos)
        view = self.q.drain_view(group, priority)  # the rates alone
        product = self.q.drain_view(group, priority, pos).wait(pos)
        reg = self.regression.predict(group, pos)
        reg = product if reg is None else reg
        return [staffing, staffing * self.staff_band.factor(group, pos),
                dataclasses.replace(view, abandon_hazard=0.0, overtakers=()).wait(pos),
                dataclasses.replace(view, overtakers=()).wait(pos), view.wait(pos), product,
                product * self.drain_band.factor(group, pos), reg, (product + reg) / 2]

    def answered(self, group: str, pos: int, told: list[float], waited: float) -> None:
        self.staff_band.observe(group, pos, told[0], waited)
        self.drain_band.observe(group, pos, told[PRODUCT], waited)
        self.regression.observe(group, pos, waited)


def set_staff(q: CallQueue, agents: list[Agent], target: int, leaving: set[str]) -> int:
    """Sign agents in or out (those on a call when it ends) so that `target` stay; returns the queue operations."""
    ops = 0
    on = [a for a in agents if a.state != AgentState.SIGNED_OUT and a.agent_id not in leaving]
    for a in agents:
        if len(on) >= target:
            break
        if a.agent_id in leaving:
            leaving.discard(a.agent_id)
            on.append(a)
        elif a.state == AgentState.SIGNED_OUT:
            q.set_state(a.agent_id, AgentState.AVAILABLE)
            ops += 1
            on.append(a)
    for a in sorted(on, key=lambda a: a.state == AgentState.ON_CALL)[:max(0, len(on) - target)]:
        if a.state == AgentState.ON_CALL:
            leaving.add(a.agent_id)
        else:
            q.set_state(a.agent_id, AgentState.SIGNED_OUT)
            ops += 1
    return ops


def rounded_up(wait_s: float) -> int:
    """The other rule, for comparison: minutes rounded up, one minute or less said as "under a minute"."""
    minutes = math.ceil(wait_s / 60.0)
    return minutes if minutes > 1 else 0


def p90(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[int(0.9 * (len(xs) - 1))] if xs else math.nan


def report(name: str, pairs: list[tuple[float, float]], censored: list[tuple[float, float]]) -> str:
    """One line: relative (symmetric selection) and absolute errors of (told, actual) pairs, the former figure,
    the signed bias, and the censored (abandoned) callers."""
    pairs = [(t, a) for t, a in pairs if math.isfinite(t)]
    rel = [relative_error(t, a) for t, a in pairs if max(t, a) >= ERROR_FLOOR_S]
    old = [abs(t - a) / a for t, a in pairs if a >= 30]
    abs_s = [abs(t - a) for t, a in pairs]
    bias = statistics.fmean((t - a) / max(a, ERROR_FLOOR_S) for t, a in pairs) if pairs else math.nan
    line = (f"{name:36s} n={len(rel):6d} rel mean {statistics.fmean(rel):6.1%} p90 {p90(rel):6.1%} | "
            f"abs mean {statistics.fmean(abs_s):5.1f} s p90 {p90(abs_s):5.1f} s | waited>=30 s p90 {p90(old):6.1%} | "
            f"bias {bias:+6.1%}")
    past = [relative_error(t, w) for t, w in censored if math.isfinite(t) and w > t]
    if past:
        line += f" | abandoned past it {len(past)}/{len(censored)} (err >= {statistics.fmean(past):.0%})"
    return line


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=110_000)
    ap.add_argument("--agents", type=int, default=330)
    ap.add_argument("--elderly-agents", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--patience", type=float, default=240.0, help="mean caller patience, s")
    ap.add_argument("--accept-callback", type=float, default=0.4)
    ap.add_argument("--urgent", type=float, default=0.02, help="share of urgent callers (general desk)")
    ap.add_argument("--shifts", action="store_true", help="staff the general desk to the hourly curve")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="a centre this many times the size: calls and both staffs scaled (0.1: a small centre)")
    args = ap.parse_args()
    args.calls = round(args.calls * args.scale)
    args.agents = max(1, round(args.agents * args.scale))
    args.elderly_agents = max(1, round(args.elderly_agents * args.scale))
    rng = random.Random(args.seed)
    now = [0.0]
    q = CallQueue([AgentGroup("general", 15.0), AgentGroup("elderly", 15.0)], lambda: now[0],
                  QueuePolicy(max_length=5000, announce_every_s=60.0, offer_callback_over_s=180.0),
                  handle_prior_s=185.0)
    for i in range(args.agents):
        q.add_agent(f"g{i}", f"sip:g{i}@ops", ("general",))
    for i in range(args.elderly_agents):
        q.add_agent(f"e{i}", f"sip:e{i}@ops", ("elderly", "general"))
    cands = Candidates(q)
    events: list[tuple[float, int, str, str]] = []  # (time, seq, kind, id)
    seq = 0

    def push(t: float, kind: str, ident: str) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, ident))

    for n, t in enumerate(arrivals(rng, args.calls)):
        push(t, "arrive", f"c{n}")
    staff = shift_staff(args.calls, args.agents) if args.shifts else []
    for h in range(len(staff)):
        push(h * 3600.0, "staff", str(h))
    leaving: set[str] = set()  # agents to sign out when their call ends
    push(0.0, "tick", "")
    ops = 0
    callbacks = cb_answered = 0
    live: set[str] = set()
    in_callback: set[str] = set()
    entry: dict[str, tuple[str, int, float, list[float]]] = {}  # call -> (group, position, entered, candidates)
    pairs: list[list[tuple[float, float]]] = [[] for _ in CANDIDATES]
    censored: list[list[tuple[float, float]]] = [[] for _ in CANDIDATES]
    cb_pairs: list[tuple[float, float]] = []
    by_desk: dict[str, list[tuple[float, float]]] = {"general": [], "elderly": []}  # product estimate
    before: dict[str, list[tuple[float, float]]] = {"general": [], "elderly": []}  # previous product
    cand_s = 0.0

    def book(call_id: str) -> None:
        nonlocal callbacks, ops
        q.to_callback(call_id)
        ops += 1
        live.discard(call_id)
        in_callback.add(call_id)
        callbacks += 1

    timed = time.perf_counter
    t0 = timed()
    while events:
        t, _, kind, ident = heapq.heappop(events)
        now[0] = t
        if kind == "arrive":
            r = rng.random()
            group, prio = (("elderly", Priority.ELDERLY) if r < 0.12 else
                           ("general", Priority.URGENT) if r < 0.12 + args.urgent else ("general", Priority.NORMAL))
            evs = q.enqueue(ident, group, prio)
            ops += 1
            c0 = timed()
            entry[ident] = (group, q.position(ident), t, cands.at_entry(ident, group, prio))
            cand_s += timed() - c0
            live.add(ident)
            push(t + rng.expovariate(1 / args.patience), "abandon", ident)
            for e in evs:
                if isinstance(e, OfferCallback) and rng.random() < args.accept_callback:
                    book(ident)
        elif kind == "abandon":
            if ident in live:
                q.abandon(ident)
                ops += 1
                live.discard(ident)
                _, _, entered, told = entry.pop(ident)
                for i, v in enumerate(told):
                    censored[i].append((v, t - entered))
        elif kind == "end":
            q.call_ended(ident)
            ops += 1
            if ident in leaving:
                leaving.discard(ident)
                q.set_state(ident, AgentState.SIGNED_OUT)
        elif kind == "staff":
            general = [q.agents[f"g{i}"] for i in range(args.agents)]
            ops += set_staff(q, general, staff[int(ident)], leaving)
        elif kind == "tick":
            for e in q.tick():
                ops += 1
                if isinstance(e, Connect):
                    q.connected(e.call_id)
                    live.discard(e.call_id)
                    group, pos, _, told = entry.pop(e.call_id)
                    if e.callback:
                        in_callback.discard(e.call_id)
                        cb_answered += rng.random() < 0.85
                        cb_pairs.append((told[PRODUCT], e.waited_s))
                    else:
                        c0 = timed()
                        for i, v in enumerate(told):
                            pairs[i].append((v, e.waited_s))
                        by_desk[group].append((told[PRODUCT], e.waited_s))
                        before[group].append((told[PREVIOUS], e.waited_s))
                        cands.answered(group, pos, told, e.waited_s)
                        cand_s += timed() - c0
                    handle = rng.lognormvariate(math.log(150), 0.5)
                    push(t + handle, "end", e.agent_id)
                elif isinstance(e, OfferCallback) and e.call_id in live and rng.random() < args.accept_callback:
                    book(e.call_id)
            if events:
                push(t + 1.0, "tick", "")
    cpu = timed() - t0 - cand_s
    st = q.stats
    base = st.answered + st.abandoned
    print(f"calls offered {st.offered}, answered live {st.answered}, abandoned {st.abandoned}, "
          f"callbacks booked {callbacks} ({callbacks / st.offered:.1%}), callbacks reached {cb_answered}")
    print(f"service level: 15 s {st.service_level(15):.1%}, 20 s {st.service_level(20):.1%}; "
          f"abandonment {st.abandoned / base:.1%}")
    print(f"queue operations {ops} in {cpu:.1f} s CPU (candidate estimates not counted): {ops / cpu:,.0f} ops/s "
          f"(simulated day 86,400 s, {86400 / cpu:,.0f}x real time)")
    print(f"wait told at entry vs actual, answered live callers (n = callers told or waiting >= {ERROR_FLOOR_S:.0f} s, "
          f"of {st.answered}; abandoned: censored):")
    for name, p, c in zip(CANDIDATES, pairs, censored):
        print("  " + report(name, p, c))
    said = [(spoken_seconds(spoken_minutes(t), a), a) for t, a in st.estimate_pairs]
    up = [(spoken_seconds(rounded_up(t), a), a) for t, a in st.estimate_pairs]
    print("product estimate, as said (under a minute / whole minutes), later and per desk:")
    print("  " + report("said at entry (nearest minute)", said, []))
    print("  " + report("said, minutes rounded up instead", up, []))
    print("  " + report("re-estimates announced while waiting", st.reestimate_pairs, []))
    for desk, desk_pairs in by_desk.items():
        print("  " + report(f"told at entry, {desk} desk", desk_pairs, []))
        print("  " + report(f"  previous estimate, {desk} desk", before[desk], []))
    print("  " + report("callbacks (told at entry vs dialled)", cb_pairs, []))


if __name__ == "__main__":
    main()
