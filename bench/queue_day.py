"""A simulated hotline day through the queue logic in accelerated time.

~110,000 calls on a two-peak weekday curve (9-11 h and 14-16 h), lognormal handle times (mean ~170 s), wrap-up 15 s,
a fixed staff that saturates at peak, exponential caller patience, callbacks accepted by some callers offered one.
Prints service level (15 s, 20 s), abandonment, callback share, wait-estimate error (mean abs and p90, relative,
for callers who waited at least 30 s, plus absolute seconds for all) and queue operations per second.
Usage: .venv/bin/python bench/queue_day.py [--calls 110000] [--agents 330] [--seed 1]
"""
from __future__ import annotations

import argparse
import heapq
import math
import random
import statistics
import time

from ivr.queue import AgentGroup, CallQueue, Connect, OfferCallback, Priority, QueuePolicy

# share of the day's calls per hour (Beijing 12345-like: quiet night, morning and afternoon peaks)
HOURLY = [0.4, 0.25, 0.2, 0.2, 0.25, 0.5, 1.5, 3.5, 7.0, 8.5, 8.5, 7.0, 5.0, 5.5, 7.5, 8.0, 7.5, 6.5, 5.0, 4.0,
          3.2, 2.6, 1.6, 0.8]


def arrivals(rng: random.Random, calls: int) -> list[float]:
    total = sum(HOURLY)
    out: list[float] = []
    for h, w in enumerate(HOURLY):
        n = round(calls * w / total)
        out.extend(h * 3600 + rng.random() * 3600 for _ in range(n))
    return sorted(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=110_000)
    ap.add_argument("--agents", type=int, default=330)
    ap.add_argument("--elderly-agents", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--patience", type=float, default=240.0, help="mean caller patience, s")
    ap.add_argument("--accept-callback", type=float, default=0.4)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    now = [0.0]
    q = CallQueue([AgentGroup("general", 15.0), AgentGroup("elderly", 15.0)], lambda: now[0],
                  QueuePolicy(max_length=5000, announce_every_s=60.0, offer_callback_over_s=180.0),
                  handle_prior_s=185.0)
    for i in range(args.agents):
        q.add_agent(f"g{i}", f"sip:g{i}@ops", ("general",))
    for i in range(args.elderly_agents):
        q.add_agent(f"e{i}", f"sip:e{i}@ops", ("elderly", "general"))
    events: list[tuple[float, int, str, str]] = []  # (time, seq, kind, id)
    seq = 0

    def push(t: float, kind: str, ident: str) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, ident))

    for n, t in enumerate(arrivals(rng, args.calls)):
        push(t, "arrive", f"c{n}")
    push(0.0, "tick", "")
    ops = 0
    callbacks = cb_answered = 0
    live: set[str] = set()
    in_callback: set[str] = set()
    t0 = time.perf_counter()
    while events:
        t, _, kind, ident = heapq.heappop(events)
        now[0] = t
        if kind == "arrive":
            elderly = rng.random() < 0.12
            evs = q.enqueue(ident, "elderly" if elderly else "general",
                            Priority.ELDERLY if elderly else Priority.NORMAL)
            ops += 1
            live.add(ident)
            push(t + rng.expovariate(1 / args.patience), "abandon", ident)
            for e in evs:
                if isinstance(e, OfferCallback) and rng.random() < args.accept_callback:
                    q.to_callback(ident)
                    ops += 1
                    live.discard(ident)
                    in_callback.add(ident)
                    callbacks += 1
        elif kind == "abandon":
            if ident in live:
                q.abandon(ident)
                ops += 1
                live.discard(ident)
        elif kind == "end":
            q.call_ended(ident)
            ops += 1
        elif kind == "tick":
            for e in q.tick():
                ops += 1
                if isinstance(e, Connect):
                    q.connected(e.call_id)
                    live.discard(e.call_id)
                    if e.callback:
                        in_callback.discard(e.call_id)
                        cb_answered += rng.random() < 0.85
                    handle = rng.lognormvariate(math.log(150), 0.5)
                    push(t + handle, "end", e.agent_id)
                elif isinstance(e, OfferCallback) and e.call_id in live and rng.random() < args.accept_callback:
                    q.to_callback(e.call_id)
                    live.discard(e.call_id)
                    in_callback.add(e.call_id)
                    callbacks += 1
            if events:
                push(t + 1.0, "tick", "")
    cpu = time.perf_counter() - t0
    st = q.stats
    pairs = st.estimate_pairs
    rel = sorted(abs(w - e) / w for e, w in pairs if w >= 30)
    abs_s = sorted(st.abs_errors_s)
    base = st.answered + st.abandoned
    print(f"calls offered {st.offered}, answered live {st.answered}, abandoned {st.abandoned}, "
          f"callbacks booked {callbacks} ({callbacks / st.offered:.1%}), callbacks reached {cb_answered}")
    print(f"service level: 15 s {st.service_level(15):.1%}, 20 s {st.service_level(20):.1%}; "
          f"abandonment {st.abandoned / base:.1%}")
    print(f"wait-estimate error (waited >= 30 s, n={len(rel)}): mean {statistics.fmean(rel):.1%}, "
          f"p90 {rel[int(0.9 * (len(rel) - 1))]:.1%}")
    print(f"wait-estimate abs error, all answered (n={len(abs_s)}): mean {statistics.fmean(abs_s):.1f} s, "
          f"p90 {abs_s[int(0.9 * (len(abs_s) - 1))]:.1f} s")
    print(f"queue operations {ops} in {cpu:.1f} s CPU: {ops / cpu:,.0f} ops/s "
          f"(simulated day 86,400 s, {86400 / cpu:,.0f}x real time)")


if __name__ == "__main__":
    main()
