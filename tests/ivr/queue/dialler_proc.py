"""Subprocess for the SIGKILL test: dials every due callback in order, logging each dial (fsynced) before the call."""
import os
import sys
import time

from ivr.queue.callbacks import CallbackStore

url, log_path, owner, call_s = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
store = CallbackStore(url)
store.recover()
with open(log_path, "a", encoding="utf-8") as log:
    while (cb := store.claim_next(owner, lease_s=0.5)) is not None:
        log.write(f"{cb.id}\n")
        log.flush()
        os.fsync(log.fileno())
        time.sleep(call_s)  # the call
        store.finish(cb.id, owner, "answered")
