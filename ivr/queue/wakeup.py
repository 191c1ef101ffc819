"""A node wakes when the centre gives an operator to a call it must put through: a thread LISTENs on PostgreSQL's
`ivr_queue` channel (the payload names the node) and raises a flag the queue's tick reads, so the hand-over is
seen at once without polling the database hard. A lost connection is opened again (a restarted server); until then
the queue falls back to its periodic sync."""
from __future__ import annotations

import logging
import threading

import psycopg

from ivr.queue.centre import CHANNEL

__all__ = ["Wakeup", "libpq_url"]

log = logging.getLogger(__name__)

RETRY_S = 1.0


def libpq_url(sqlalchemy_url: str) -> str:
    """The libpq form of an SQLAlchemy PostgreSQL URL (the driver name dropped)."""
    scheme, _, rest = sqlalchemy_url.partition("://")
    return f"postgresql://{rest}" if scheme.startswith("postgres") else sqlalchemy_url


class Wakeup:
    """LISTEN on `url` in a daemon thread; `take()` says (once) whether `node` was notified since."""

    def __init__(self, url: str, node: str) -> None:
        self.url, self.node = libpq_url(url), node
        self.woken = threading.Event()
        self.notified = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="queue-listen", daemon=True)
        self._thread.start()

    def take(self) -> bool:
        if not self.woken.is_set():
            return False
        self.woken.clear()
        return True

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        down = ""
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if down:
                        log.info("listening to the queue database again")
                    down = ""
                    self.woken.set()  # changes made while not listening
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            if note.payload in (self.node, ""):
                                self.notified += 1
                                self.woken.set()
            except psycopg.Error as exc:
                why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                if why != down:
                    log.warning("queue database: not listening (%s); retrying every %.0f s", why, RETRY_S)
                down = why
                self._stop.wait(RETRY_S)
