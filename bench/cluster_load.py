"""Calls through the Kamailio front door (deploy/kamailio/kamailio.cfg) to 1 and 3 real `ivr serve` nodes with SIPp:
calls per second, failed calls, call set-up time, CPU per call; then how long new calls take to avoid a node killed
with kill -9; then the centre's queue in PostgreSQL shared by 1 and 3 nodes (processes running the real SharedQueue
with LISTEN/NOTIFY, real time): callers racing for operators, how long a freed operator takes to reach the best
waiting caller (p50/p95), database statements, connection checkouts and transactions per call, double assignments.

    .venv/bin/python bench/cluster_load.py [--cps 25 50 100] [--calls 300] [--hold-ms 1000] [--kills 3]
                                           [--centre-callers 200] [--centre-agents 20] [--only centre|sip]
                                           [--queue centre|node]

The front door runs with the shipped settings (probes every 2 s, a silent node given up after 1 s) but for the
trunk's address, trusted as a carrier's; the nodes run the shipped flow (no Vosk model: menus and recordings, no
recognition) on 127.0.0.1, each with its own data dir, sharing the centre's queue in PostgreSQL (beats, mirrors,
LISTEN) unless `--queue node`. One node is measured behind its own front door, three behind
the cluster's. Callers come from one trunk address, hold `--hold-ms` and hang up through the front door. The figures
are for this machine: its effective cores are measured first (two busy processes side by side) and printed, as 1 -> 3
nodes cannot scale past them. Prints figures; asserts none.
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "ivr" / "sip"), str(ROOT / "tests" / "cluster"),
                str(ROOT / "tests" / "ivr" / "tickets")]

import socket  # noqa: E402

import subprocess  # noqa: E402
from collections import defaultdict  # noqa: E402

from clusterkit import TRUNK, Cluster, FrontDoor, Node, call  # noqa: E402
from pgkit import PgCluster, fresh_database  # noqa: E402
from serveproc import free_port  # noqa: E402
from sippkit import sipp_counts  # noqa: E402

from prompts import load_catalogue  # noqa: E402
from prompts.render import render_catalogue  # noqa: E402

#: the shipped front door, the trunk trusted
SETTINGS = {"TRUSTED_TRUNKS": f'"{TRUNK}/32"', "LOG_LEVEL": "1"}
TICK = os.sysconf("SC_CLK_TCK")


def _spin(n: int) -> None:
    x = 0
    for i in range(n):
        x += i * i


def effective_cores(n: int = 4_000_000) -> float:
    """How many cores two CPU-bound processes really get: 2 x (time alone / time each when side by side)."""
    t0 = time.perf_counter()
    _spin(n)
    alone = time.perf_counter() - t0
    t0 = time.perf_counter()
    procs = [multiprocessing.Process(target=_spin, args=(n,)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return 2 * alone / (time.perf_counter() - t0)


def cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by these processes."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def group(pgid: int) -> list[int]:
    """The processes of a process group (Kamailio and its workers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def node_pids(nodes: list[Node]) -> list[int]:
    return [n.served.proc.pid for n in nodes if n.served is not None and n.up]


def setup_ms(workdir: Path) -> list[float]:
    """INVITE -> 200 times of every call, from SIPp's -trace_rtt file."""
    times: list[float] = []
    for csv in workdir.glob("*_rtt.csv"):
        for line in csv.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) > 1:
                times.append(float(parts[1]))
    return times


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else (values[0] if values else 0.0)


async def bench_cps(cluster: Cluster, door: FrontDoor, nodes: list[Node], rate: int, calls: int, hold_ms: int,
                    work: Path) -> None:
    kam = group(door.proc.pid) if door.proc is not None else []
    node_cpu0, kam_cpu0, t0 = cpu_s(node_pids(nodes)), cpu_s(kam), time.monotonic()
    taken0 = sum(n.calls() for n in nodes)
    rc, out = await cluster.sipp(call(hold_ms), work, calls=calls, rate=rate, door=door,
                                 extra=["-trace_rtt", "-rtt_freq", "1"])
    wall = time.monotonic() - t0
    node_cpu, kam_cpu = cpu_s(node_pids(nodes)) - node_cpu0, cpu_s(kam) - kam_cpu0
    ok, failed = sipp_counts(out)
    times = setup_ms(work)
    taken = [n.calls() for n in nodes]
    print(f"  {len(nodes)} node(s), {rate}/s offered, {calls} calls of {hold_ms} ms: {ok} ok, {failed} failed, "
          f"{ok / max(wall - hold_ms / 1000, 0.001):.1f} calls/s sustained; INVITE->200 p50 {pct(times, 50):.0f} ms "
          f"p95 {pct(times, 95):.0f} ms max {max(times, default=0):.0f} ms; CPU per call: nodes "
          f"{1000 * node_cpu / max(ok, 1):.1f} ms, Kamailio {1000 * kam_cpu / max(ok, 1):.2f} ms; "
          f"taken {sum(taken) - taken0} ({' / '.join(map(str, taken))} since start)")
    if failed:
        print(out[-1200:])


async def bench_kill(cluster: Cluster, rate: int, seconds: int, work: Path) -> float:
    """A steady stream of short calls; a node killed a third of the way in. Returns the seconds from the kill until
    the front door offered it no more new calls (a call of its timed out, or a probe did)."""
    victim = cluster.nodes[1]
    door = cluster.front
    door.skip_log()
    start = door.mark()
    stream = asyncio.create_task(cluster.sipp(call(300), work, calls=rate * seconds, rate=rate,
                                              extra=["-trace_rtt", "-rtt_freq", "1"]))
    await asyncio.sleep(seconds / 3)
    t_kill = time.monotonic()
    victim.kill()
    await asyncio.to_thread(door.wait_for, rf"node {victim.uri} is down")
    avoided = time.monotonic() - t_kill
    rc, out = await stream
    ok, failed = sipp_counts(out)
    tries = door.count(rf"node {victim.uri} did not answer", since=start)
    slowest = ", ".join(f"{t:.0f}" for t in sorted(setup_ms(work))[-tries - 1:])
    print(f"  kill -9 of {victim.name}: no new calls offered to it {avoided:.2f} s after the kill; {tries} call(s) "
          f"offered to it before that went on to the next node after the node time-out; callers: {ok} ok, {failed} "
          f"failed (calls in progress on it are lost); slowest INVITE->200 {slowest} ms")
    cluster.restart(victim)
    return avoided


def centre_race(pg: PgCluster, nodes: int, callers: int, agents: int, spread_s: float, hold_s: float,
                work: Path) -> None:
    """`callers` callers spread over `nodes` processes sharing one centre's queue race for `agents` operators."""
    url = fresh_database(pg)
    work.mkdir(parents=True)
    go = work / "go"
    logs = [work / f"n{i}.log" for i in range(nodes)]
    share = [callers // nodes + (i < callers % nodes) for i in range(nodes)]
    procs = [subprocess.Popen([sys.executable, str(ROOT / "tests" / "ivr" / "queue" / "centre_proc.py"), url, f"n{i}",
                               str(log), str(go), str(n), str(agents), str(spread_s), str(hold_s), "60"],
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
             for i, (log, n) in enumerate(zip(logs, share))]
    while not all(log.exists() and "ready" in log.read_text() for log in logs):
        time.sleep(0.05)
    go.touch()
    for p in procs:
        p.wait()
    lines = sorted((line.split() for log in logs for line in log.read_text().splitlines()), key=lambda x: float(x[3]))
    queued: dict[str, float] = {}
    served: set[str] = set()
    busy: dict[str, bool] = defaultdict(bool)
    freed_at: dict[str, float] = {}
    doubles = 0
    latency: list[float] = []
    stats = [0, 0, 0, 0]
    for what, call_id, agent, at in lines:
        t = float(at)
        if what == "queued":
            queued[call_id] = t
        elif what == "connect":
            doubles += busy[agent]
            busy[agent] = True
            served.add(call_id)
            if agent in freed_at and queued[call_id] <= freed_at[agent]:  # the caller waited for this operator
                latency.append(1000 * (t - freed_at.pop(agent)))
        elif what == "end":
            busy[agent] = False
            if any(c not in served and q <= t for c, q in queued.items()):
                freed_at[agent] = t
        elif what == "stats":
            stats = [a + int(b) for a, b in zip(stats, agent.split(","))]
    n = max(len(served), 1)
    print(f"  {nodes} node(s), {callers} callers over {spread_s:.0f} s for {agents} operators holding {hold_s:.2f} s: "
          f"{len(served)} served, {len(queued) - len(served)} left a message, {doubles} double assignments; "
          f"operator free -> waiting caller handed over p50 {pct(latency, 50):.0f} ms p95 {pct(latency, 95):.0f} ms "
          f"max {max(latency, default=0):.0f} ms ({len(latency)} hand-overs); per call: {stats[0] / n:.1f} "
          f"statements, {stats[1] / n:.1f} connection checkouts (each pinged), {stats[2] / n:.1f} transactions, "
          f"{stats[3] / n:.1f} notifications heard")


async def main(args: argparse.Namespace) -> None:
    print(f"machine: {os.cpu_count()} CPUs reported, {effective_cores():.2f} effective cores (two busy processes)")
    if args.only != "sip":
        pg = PgCluster()
        try:
            print("the centre's queue in PostgreSQL (SharedQueue processes, LISTEN/NOTIFY):")
            with tempfile.TemporaryDirectory(prefix="centre-bench-") as tmp:
                for spread_s, hold_s in ((10.0, 1.0), (2.0, 0.1)):  # steady (about 20 hand-overs a second); a rush
                    for nodes in (1, 3):
                        centre_race(pg, nodes, args.centre_callers, args.centre_agents, spread_s, hold_s,
                                    Path(tmp) / f"race-{spread_s}-{nodes}")
        finally:
            pg.stop()
    if args.only == "centre":
        return
    queue_pg = PgCluster() if args.queue == "centre" else None
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
        home = Path(tmp)
        prompts = home / "prompts"
        render_catalogue(load_catalogue(ROOT / "prompts" / "catalogue.yaml"), prompts)
        t0 = time.monotonic()
        node_env = {"IVR_QUEUE_DATABASE_URL": fresh_database(queue_pg)} if queue_pg is not None else None
        cluster = Cluster.start(home / "cluster", prompts, settings=SETTINGS, node_env=node_env)
        print(f"3 nodes and the front door up in {time.monotonic() - t0:.1f} s; their queue: "
              + ("the centre's, in PostgreSQL" if queue_pg is not None else "each node's own"))
        try:
            one = FrontDoor(home / "one", free_port(socket.SOCK_DGRAM), SETTINGS)
            one.start([cluster.nodes[0].uri])
            try:
                print("calls through the front door:")
                for rate in args.cps:
                    await bench_cps(cluster, one, cluster.nodes[:1], rate, args.calls, args.hold_ms,
                                    home / f"one-{rate}")
                    await bench_cps(cluster, cluster.front, cluster.nodes, rate, args.calls, args.hold_ms,
                                    home / f"three-{rate}")
            finally:
                one.stop()
            print("a node killed under a steady 10 calls/s (shipped probe interval 2 s, node time-out 1 s):")
            avoided = [await bench_kill(cluster, 10, 15, home / f"kill-{i}") for i in range(args.kills)]
            print(f"  new calls avoided the dead node within {max(avoided):.2f} s at worst (target: 5 s)")
        finally:
            cluster.stop()
            if queue_pg is not None:
                queue_pg.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cps", type=int, nargs="+", default=[25, 50, 100], help="offered calls per second")
    parser.add_argument("--calls", type=int, default=300, help="calls per measurement")
    parser.add_argument("--hold-ms", type=int, default=1000, help="how long each caller stays on")
    parser.add_argument("--kills", type=int, default=3, help="how many times a node is killed")
    parser.add_argument("--centre-callers", type=int, default=200, help="callers racing in the centre's queue")
    parser.add_argument("--centre-agents", type=int, default=20, help="operators they race for")
    parser.add_argument("--only", choices=("centre", "sip"), help="measure only the centre's queue, or only SIP")
    parser.add_argument("--queue", choices=("centre", "node"), default="centre",
                        help="the SIP nodes' queue: the centre's in PostgreSQL (default), or each node's own")
    asyncio.run(main(parser.parse_args()))
