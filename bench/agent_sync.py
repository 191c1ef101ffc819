"""What `AgentDirectory.sync(queue)` costs the server each tick, with a peak-hour staff.

A CallQueue with N operators (general and elderly desks) kept busy by callers; every simulated second some calls end
and new ones are connected (the queue's own changes, written back), and now and then a supervisor signs someone in
or out from another directory object on the same SQLite file (WAL, synchronous=FULL). Prints the time of one sync
with nothing to write, and with the changes of a busy second, in milliseconds (median and p95).
Usage: .venv/bin/python bench/agent_sync.py [--agents 360] [--seconds 300]
"""
from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from ivr.config import DEFAULT_GROUPS, AgentConfig
from ivr.queue import AgentState, CallQueue, Connect
from ivr.queue.directory import AgentDirectory


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=360)
    ap.add_argument("--seconds", type=int, default=300)
    args = ap.parse_args()
    rnd = random.Random(1)
    agents = [AgentConfig(f"op{i}", f"op{i}", f"sip:op{i}@10.0.{i // 250}.{i % 250 + 1}",
                          ("elderly",) if i % 8 == 0 else ("general",)) for i in range(args.agents)]
    t = [1_780_000_000.0]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'callbacks.db'}"
        server = AgentDirectory(url, agents, lambda: t[0])
        supervisor = AgentDirectory(url, agents, lambda: t[0])
        queue = CallQueue(list(DEFAULT_GROUPS), lambda: t[0])
        server.populate(queue)
        idle_ms: list[float] = []
        busy_ms: list[float] = []
        writes: list[int] = []
        on_call: dict[str, str] = {}
        n = 0
        for _ in range(args.seconds):
            t[0] += 1.0
            for aid in [a for a in on_call if rnd.random() < 1 / 170]:  # mean handle ~170 s
                queue.connected(on_call.pop(aid))
                queue.call_ended(aid)
            for _ in range(rnd.randint(1, 4)):
                n += 1
                queue.enqueue(f"c{n}", "elderly" if rnd.random() < 0.12 else "general")
            if rnd.random() < 0.05:
                supervisor.set_state(rnd.choice(agents).agent_id, rnd.choice(["available", "signed_out"]), "sup")
            for e in queue.tick():
                if isinstance(e, Connect):
                    on_call[e.agent_id] = e.call_id
            before = {a: ag.state for a, ag in queue.agents.items()}
            rows = {s.agent_id: s.state for s in server.statuses()}
            pending = sum(1 for a, st in before.items() if st != rows[a])
            start = time.perf_counter()
            server.sync(queue)
            busy_ms.append((time.perf_counter() - start) * 1000)
            writes.append(pending)
            start = time.perf_counter()
            server.sync(queue)  # nothing new since the last one
            idle_ms.append((time.perf_counter() - start) * 1000)
        states = {s: sum(1 for a in queue.agents.values() if a.state == s) for s in AgentState}

    def fig(xs: list[float]) -> str:
        return f"median {statistics.median(xs):.2f} ms, p95 {sorted(xs)[int(len(xs) * 0.95)]:.2f} ms"

    print(f"{args.agents} operators, {args.seconds} simulated seconds, {n} callers queued")
    print(f"sync with nothing to write:        {fig(idle_ms)}")
    print(f"sync after a second of the queue:  {fig(busy_ms)} "
          f"({statistics.mean(writes):.1f} state changes written back on average, max {max(writes)})")
    print("states at the end: " + ", ".join(f"{s.value} {k}" for s, k in states.items()))


if __name__ == "__main__":
    main()
