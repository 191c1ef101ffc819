"""One node of the race tests: a real SharedQueue (LISTEN/NOTIFY, real time) with the centre's operators, `callers`
callers of its own queued over `spread_s` seconds once the file GO exists; each caller put through holds its
operator `hold_s` (0.5-1.5x, seeded) and a caller who waited `patience_s` leaves a message. Every step is logged
as "<what> <call> <agent> <time>"; at the end "stats <node> <statements>,<checkouts>,<transactions>,<notifications>
<time>" counts what it asked of the database (checkouts: connections taken from the pool, each pinged).

    centre_proc.py URL NODE LOG GO CALLERS AGENTS SPREAD_S HOLD_S PATIENCE_S

It exits when each of its callers is served or has left a message.
"""
import asyncio
import random
import sys
import time
from pathlib import Path

from ivr.config import AgentGroup
from ivr.queue import AgentState, Connect
import sqlalchemy as sa

from ivr.queue.centre import Centre
from ivr.queue.shared import SharedQueue
from ivr.queue.wakeup import Wakeup

url, node, log_path, go = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
callers, agents = int(sys.argv[5]), int(sys.argv[6])
spread_s, hold_s, patience_s = float(sys.argv[7]), float(sys.argv[8]), float(sys.argv[9])
log = open(log_path, "a", encoding="utf-8")


def note(what: str, call: str, agent: str = "-") -> None:
    log.write(f"{what} {call} {agent} {time.time():.6f}\n")
    log.flush()


async def main() -> None:
    rnd = random.Random(node)
    centre = Centre.open(url, node)
    counts = {"statements": 0, "checkouts": 0, "transactions": 0}

    def count(what: str):
        def seen(*_args) -> None:
            counts[what] += 1
        return seen

    sa.event.listen(centre.engine, "before_cursor_execute", count("statements"))
    sa.event.listen(centre.engine.pool, "checkout", count("checkouts"))
    for end in ("commit", "rollback"):
        sa.event.listen(centre.engine, end, count("transactions"))
    wake = Wakeup(url, node)
    queue = SharedQueue([AgentGroup("general", wrap_up_s=0.0)], time.time, centre, wake=wake, lapse_s=60)
    for i in range(agents):
        queue.add_agent(f"op{i}", f"sip:op{i}@127.0.0.1:5999", ("general",), AgentState.AVAILABLE)
    note("ready", node)
    while not go.exists():
        await asyncio.sleep(0.01)
    arrivals = sorted(rnd.uniform(0, spread_s) for _ in range(callers))
    start = time.time()
    waiting: dict[str, float] = {}
    done = 0
    ended = asyncio.Queue()

    async def talk(event: Connect) -> None:
        queue.connected(event.call_id)
        await asyncio.sleep(hold_s * rnd.uniform(0.5, 1.5))
        note("end", event.call_id, event.agent_id)
        queue.call_ended(event.agent_id)
        await ended.put(event.call_id)

    tasks = set()
    while done < callers:
        now = time.time()
        while arrivals and now - start >= arrivals[0]:
            arrivals.pop(0)
            call_id = f"{node}-{callers - len(arrivals)}"
            queue.enqueue(call_id, "general")
            waiting[call_id] = now
            note("queued", call_id)
        for call_id, since in list(waiting.items()):
            if now - since >= patience_s:
                del waiting[call_id]
                queue.abandon(call_id)
                note("message", call_id)
                done += 1
        for event in queue.tick():
            if isinstance(event, Connect):
                if event.call_id not in waiting:  # left a message just before: the operator is free again
                    queue.connected(event.call_id)
                    queue.set_state(event.agent_id, AgentState.AVAILABLE)
                    note("freed", event.call_id, event.agent_id)
                    continue
                del waiting[event.call_id]
                note("connect", event.call_id, event.agent_id)
                task = asyncio.create_task(talk(event))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        while not ended.empty():
            ended.get_nowait()
            done += 1
        await asyncio.sleep(0.01)
    queue.close()
    note("stats", node, f"{counts['statements']},{counts['checkouts']},{counts['transactions']},{wake.notified}")
    note("exit", node)


asyncio.run(main())
