"""Another node of the centre in its own process, driven line by line on stdin (a real SharedQueue on the same
PostgreSQL, its clock set by the test):

    at T | enqueue CALL PRIORITY | abandon CALL | tick | rates GROUP | quit

Each command is answered with one line: "ok", or for `rates` a JSON object of the node's drain rates.

    tally_proc.py URL NODE
"""
import json
import sys

from ivr.config import AgentGroup
from ivr.queue import Priority
from ivr.queue.centre import Centre
from ivr.queue.shared import SharedQueue

url, node = sys.argv[1], sys.argv[2]
now = [1000.0]
queue = SharedQueue([AgentGroup("general", wrap_up_s=10), AgentGroup("elderly", wrap_up_s=20)], lambda: now[0],
                    Centre.open(url, node), sync_every_s=0, lapse_s=600)
for line in sys.stdin:
    what, *args = line.split()
    if what == "at":
        now[0] = float(args[0])
    elif what == "enqueue":
        queue.enqueue(args[0], "general", Priority[args[1]])
    elif what == "abandon":
        queue.abandon(args[0])
    elif what == "tick":
        queue.tick()
    elif what == "rates":
        rates = queue.rates[args[0]]
        print(json.dumps({"arrivals": {p.name: rates.arrivals_per_s(p) for p in Priority},
                          "hazard": rates.abandon_hazard}), flush=True)
        continue
    elif what == "quit":
        queue.close()
        print("ok", flush=True)
        break
    print("ok", flush=True)
