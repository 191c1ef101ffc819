"""Subprocess for the lease tests: a real QueueRunner (periodic reclaim, lease renewal) with one operator, dialling
each callback to a SIPp citizen and holding the call `hold_s`; every dial is logged (fsynced) as "<id> <owner>".

    runner_proc.py URL LOG OWNER LEASE_S HOLD_S SIPP_PORT

It writes "ready <owner>" once it runs, and stops on SIGTERM.
"""
import asyncio
import os
import signal
import sys
import time

from dialing import dial
from ivr.config import AgentGroup
from ivr.queue import CallQueue, Connect
from ivr.queue.callbacks import Callback, CallbackStore
from ivr.queue.ticker import DialbackResult, QueueRunner

url, log_path, owner = sys.argv[1], sys.argv[2], sys.argv[3]
lease_s, hold_s, citizen_port = float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])


def note(line: str) -> None:
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(line + "\n")
        log.flush()
        os.fsync(log.fileno())


async def dialback(event: Connect, cb: Callback) -> DialbackResult:
    note(f"{cb.id} {owner}")
    result = await dial(f"sip:{cb.number}@127.0.0.1:{citizen_port}", ("127.0.0.1", citizen_port), hold_s=hold_s)
    return DialbackResult(result.outcome, operator="talked" if result.outcome == "answered" else "")


async def main() -> None:
    queue = CallQueue([AgentGroup("general", wrap_up_s=0.0)], time.time)
    queue.add_agent("op1", "sip:op1@127.0.0.1:5999", ("general",))
    runner = QueueRunner(queue, CallbackStore(url), dialback=dialback, owner=owner, lease_s=lease_s)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    runner.restore()
    note(f"ready {owner}")
    await runner.run(stop)


asyncio.run(main())
