"""Subprocess for the kill test: a caller books a callback; the process SIGKILLs itself on the first frame after
the booking, before the confirmation prompt is heard."""
import os
import signal
import sys
from pathlib import Path

from desk_harness import run, scene

s = scene(Path(sys.argv[1]), "!wait:200; !keys:1; keys:1; keys:1")
exchange = s.channel.exchange


async def exchange_or_die(out):  # type: ignore[no-untyped-def]
    if any(h["kind"] == "queue_callback" for h in s.record.heard):
        os.kill(os.getpid(), signal.SIGKILL)
    return await exchange(out)


s.channel.exchange = exchange_or_die  # type: ignore[method-assign]
run(s)
sys.exit(3)  # not reached: the callback was never booked
