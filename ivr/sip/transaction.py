"""Server and client transactions over UDP with the RFC 3261 timers (section 17), driven by asyncio timers.

A server transaction keeps its last response to answer retransmitted requests, retransmits final INVITE
responses (timer G, or the 2xx schedule of section 13.3.1.4) until the ACK arrives or timer H fires, and lingers
for timer I/J to absorb late retransmissions. A client transaction (our BYE) retransmits with timer E until a
response arrives or timer F fires. Every timer is cancelled when the transaction ends, so nothing is left behind.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from ivr.sip.headers import MAGIC_COOKIE, RequestSummary

__all__ = ["SipTimers", "ServerTransaction", "ClientTransaction", "Transactions", "transaction_key"]


@dataclass(frozen=True)
class SipTimers:
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def b(self) -> float:  # 64*T1: timers B, F, H and J
        return 64 * self.t1


def transaction_key(summary: RequestSummary, method: str | None = None) -> tuple[str, ...]:
    """RFC 3261 section 17.2.3 matching: the branch with the magic cookie, else the RFC 2543 fields.

    ACK is matched to its INVITE and CANCEL has its own transaction with the INVITE's branch.
    """
    method = method or summary.method
    if method == "ACK":
        method = "INVITE"
    via = summary.vias[0]
    branch = via.branch or ""
    if branch.startswith(MAGIC_COOKIE):
        return (branch, via.host, str(via.port or 5060), method)
    return ("2543", summary.call_id, summary.from_.tag or "", str(summary.cseq.number), via.host,
            str(via.port or 5060), branch, method)


class ServerTransaction:
    def __init__(self, key: tuple[str, ...], method: str, send: Callable[[bytes], None], timers: SipTimers,
                 on_terminated: Callable[[ServerTransaction], None]) -> None:
        self.key = key
        self.method = method
        self._send = send
        self.timers = timers
        self._on_terminated = on_terminated
        self.last_response: bytes | None = None
        self.final_status: int | None = None
        self.state = "proceeding"
        self._retransmit: asyncio.TimerHandle | None = None
        self._timeout: asyncio.TimerHandle | None = None
        self._interval = timers.t1
        self.on_timeout: Callable[[], None] | None = None  # timer H fired without ACK
        self.on_ack: Callable[[], None] | None = None

    @property
    def timer_count(self) -> int:
        return (self._retransmit is not None) + (self._timeout is not None)

    def respond(self, status: int, data: bytes) -> None:
        """Send a response; a final one starts retransmission (INVITE) or the linger timer (others)."""
        if self.state == "terminated":
            return
        self.last_response = data
        self._send(data)
        if status < 200:
            return
        self.final_status = status
        loop = asyncio.get_running_loop()
        if self.method == "INVITE":
            self.state = "completed"
            self._interval = self.timers.t1
            self._retransmit = loop.call_later(self._interval, self._resend)
            self._timeout = loop.call_later(self.timers.b, self._timer_h)
        else:
            self.state = "completed"
            self._timeout = loop.call_later(self.timers.b, self.terminate)

    def request_retransmitted(self) -> None:
        if self.last_response is not None and self.state in ("proceeding", "completed"):
            self._send(self.last_response)

    def ack(self) -> None:
        """The ACK for our final response arrived: stop retransmitting and linger for timer I."""
        if self.method != "INVITE" or self.state != "completed":
            return
        self.state = "confirmed"
        self._cancel()
        loop = asyncio.get_running_loop()
        self._timeout = loop.call_later(self.timers.t4 if self.final_status and self.final_status >= 300 else 0,
                                        self.terminate)
        if self.on_ack is not None:
            self.on_ack()

    def _resend(self) -> None:
        self._retransmit = None
        if self.state != "completed" or self.last_response is None:
            return
        self._send(self.last_response)
        self._interval = min(self._interval * 2, self.timers.t2)
        self._retransmit = asyncio.get_running_loop().call_later(self._interval, self._resend)

    def _timer_h(self) -> None:
        self._timeout = None
        callback = self.on_timeout
        self.terminate()
        if callback is not None:
            callback()

    def _cancel(self) -> None:
        for handle in (self._retransmit, self._timeout):
            if handle is not None:
                handle.cancel()
        self._retransmit = self._timeout = None

    def terminate(self) -> None:
        if self.state == "terminated":
            return
        self.state = "terminated"
        self._cancel()
        self.on_timeout = self.on_ack = None
        self._on_terminated(self)


class ClientTransaction:
    """A non-INVITE request we send (BYE), with timers E and F."""

    def __init__(self, branch: str, data: bytes, send: Callable[[bytes], None], timers: SipTimers,
                 on_done: Callable[[ClientTransaction, int | None], None]) -> None:
        self.branch = branch
        self.data = data
        self._send = send
        self.timers = timers
        self._on_done = on_done
        self._interval = timers.t1
        loop = asyncio.get_running_loop()
        self._send(data)
        self._retransmit: asyncio.TimerHandle | None = loop.call_later(self._interval, self._resend)
        self._timeout: asyncio.TimerHandle | None = loop.call_later(timers.b, self._timer_f)
        self.done = False

    @property
    def timer_count(self) -> int:
        return (self._retransmit is not None) + (self._timeout is not None)

    def _resend(self) -> None:
        self._send(self.data)
        self._interval = min(self._interval * 2, self.timers.t2)
        self._retransmit = asyncio.get_running_loop().call_later(self._interval, self._resend)

    def response(self, status: int) -> None:
        if self.done or status < 200:
            return
        self._finish(status)

    def _timer_f(self) -> None:
        self._timeout = None
        self._finish(None)

    def _finish(self, status: int | None) -> None:
        self.done = True
        for handle in (self._retransmit, self._timeout):
            if handle is not None:
                handle.cancel()
        self._retransmit = self._timeout = None
        self._on_done(self, status)


class Transactions:
    """The transactions in progress on one endpoint: server transactions by their key, ours by their branch."""

    def __init__(self, timers: SipTimers) -> None:
        self.timers = timers
        self.server: dict[tuple[str, ...], ServerTransaction] = {}
        self.client: dict[str, ClientTransaction] = {}

    def new_server(self, summary: RequestSummary, send: Callable[[bytes], None]) -> ServerTransaction:
        key = transaction_key(summary)
        tx = ServerTransaction(key, summary.method, send, self.timers, self._forget)
        self.server[key] = tx
        return tx

    def _forget(self, tx: ServerTransaction) -> None:
        if self.server.get(tx.key) is tx:
            del self.server[tx.key]

    def find(self, summary: RequestSummary, method: str | None = None) -> ServerTransaction | None:
        """The server transaction a request belongs to (`method` "INVITE": the INVITE a CANCEL or ACK is for)."""
        return self.server.get(transaction_key(summary, method))

    def new_client(self, branch: str, data: bytes, send: Callable[[bytes], None],
                   on_status: Callable[[int | None], None]) -> None:
        """Send a request of ours; `on_status` hears its final status (None: none came before timer F)."""

        def done(ctx: ClientTransaction, status: int | None) -> None:
            self.client.pop(ctx.branch, None)
            on_status(status)

        self.client[branch] = ClientTransaction(branch, data, send, self.timers, done)

    def response(self, branch: str, status: int) -> None:
        """A response to a request of ours (matched by the branch of its top Via)."""
        ctx = self.client.get(branch)
        if ctx is not None:
            ctx.response(status)

    @property
    def timer_count(self) -> int:
        return sum(t.timer_count for t in self.server.values()) + sum(t.timer_count for t in self.client.values())

    def close(self) -> None:
        """End every transaction at once (the endpoint is closing)."""
        for ctx in list(self.client.values()):
            ctx._finish(None)
        for tx in list(self.server.values()):
            tx.terminate()
