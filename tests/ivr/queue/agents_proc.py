"""A server-style loop in its own process: a CallQueue synced from the agent directory every 20 ms.

Usage: python agents_proc.py CONFIG.toml. Queues one elderly caller, then prints `ready` and a line
`AGENT STATE` whenever an operator's state changes in the queue. Reads commands on stdin: `end AGENT`
(the operator's call ends) and `quit`.
"""
from __future__ import annotations

import queue as q
import sys
import threading
import time

from ivr.config import load_settings
from ivr.queue import CallQueue
from ivr.queue.directory import AgentDirectory


def main(config: str) -> None:
    settings = load_settings(config, environ={})
    directory = AgentDirectory(f"sqlite:///{settings.data_dir / 'callbacks.db'}", settings.queue_agents)
    calls = CallQueue(list(settings.queue_groups), time.monotonic)
    directory.populate(calls)
    calls.enqueue("c1", "elderly")
    commands: q.Queue[str] = q.Queue()
    def read() -> None:
        for line in sys.stdin:
            commands.put(line.strip())

    threading.Thread(target=read, daemon=True).start()
    print("ready", flush=True)
    shown = {aid: a.state for aid, a in calls.agents.items()}
    while True:
        try:
            cmd = commands.get(timeout=0.02)
        except q.Empty:
            cmd = ""
        if cmd == "quit":
            return
        if cmd.startswith("end "):
            aid = cmd.split()[1]
            calls.connected(calls.agents[aid].call_id or "")
            calls.call_ended(aid)
        directory.sync(calls)
        calls.tick()
        for aid, a in calls.agents.items():
            if a.state != shown[aid]:
                shown[aid] = a.state
                print(aid, a.state.value, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
