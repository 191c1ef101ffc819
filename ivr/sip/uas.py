"""The SIP user agent server over asyncio UDP: answers calls and runs an injected handler per call.

`SipServer(config, handler)` listens on UDP; for each INVITE it negotiates G.711 (+ RFC 4733), opens an RTP session,
answers 100/180/200 and, once the ACK arrives, runs `await handler(channel)` with a SipChannel. The call ends with
the caller's BYE (the channel then raises CallerHungUp), with `channel.hangup()` or when the handler returns (we
send BYE). CANCEL before the answer gets 487; OPTIONS 200 (503 while draining); re-INVITE changes
codec/direction/address; unknown methods 501, Require 420, offers without PCMU/PCMA 488, other versions 505, the
call limit 503 with Retry-After. We only ever send BYE (and REFER), and never answer an authentication challenge
(the front end holds no credentials). Nothing raises into the event loop: every datagram is handled inside a
guard, bad ones are answered statelessly or dropped and logged once.

The server is the front door and the life cycle: the socket (`transport`), the transactions (`transaction`),
screening and source limits (`screen`, `protection`), and draining on stop; the calls themselves are `dialogs`
(with their media, `call_media`, and REFER, `refer`).
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Coroutine
from typing import Any

from ivr.lograte import RateLimitedLog
from ivr.rtp.clock import MediaClock
from ivr.rtp.session import PortAllocator
from ivr.sip.dialog import Call, dialog_key, new_tag
from ivr.sip.dialogs import Dialogs
from ivr.sip.endpoint import CallHandler, SipServerConfig
from ivr.sip.headers import RequestSummary, parse_via
from ivr.sip.message import Request, Response, SipParseError, split_values
from ivr.sip.protection import Guard
from ivr.sip.refer import Referral
from ivr.sip.screen import ALLOW, build_response, screen
from ivr.sip.transaction import ServerTransaction, Transactions
from ivr.sip.transport import UdpTransport, stamp_via

__all__ = ["SipServer"]

logger = logging.getLogger(__name__)
FINISH_GRACE_S = 5.0  # after the calls are hung up at stop(), for their handlers to close recordings and tickets


class SipServer:
    """A UAS answering calls on one UDP port. `await start()`, then `await stop()` to drain."""

    def __init__(self, config: SipServerConfig, handler: CallHandler, clock: MediaClock | None = None) -> None:
        self.config = config
        self.handler = handler
        self.clock = clock or MediaClock()
        self.ports = PortAllocator(config.rtp_port_min, config.rtp_port_max)
        self.guard = Guard(config.protection)
        self.rate_log = RateLimitedLog(logger)  # drops, refusals and errors that a flood repeats
        self.refused: Counter[str] = Counter()  # new calls refused, by kind (metrics)
        self.dropped: Counter[str] = Counter()  # datagrams dropped unanswered, by kind (metrics)
        self.counters: dict[str, int] = {}
        self.draining = False
        self.ended_calls: list[tuple[str, str]] = []  # (call id, reason), the last 1000
        self.tasks: set[asyncio.Task[None]] = set()
        self.transactions = Transactions(config.timers)
        self.transport = UdpTransport(config.host, config.port, lambda data, addr: self.datagram_received(data, addr))
        self.dialogs = Dialogs(self)
        self._flush_timer: asyncio.TimerHandle | None = None

    @property
    def port(self) -> int:
        return self.transport.port

    @property
    def calls(self) -> dict[tuple[str, str], Call]:
        """The calls in progress, by dialog key."""
        return self.dialogs.calls

    @property
    def referrals(self) -> dict[tuple[str, str], Referral]:
        """The REFERs in progress, by the dialog key of their call."""
        return self.dialogs.referrals.in_progress

    # ----- life cycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.transport.open()
        logger.info("SIP listening on %s:%d (UDP)", self.config.host, self.port)
        self._flush_logs()

    def _flush_logs(self) -> None:
        """Report what the rate-limited log held back, every interval until stop()."""
        self.rate_log.flush()
        self._flush_timer = asyncio.get_running_loop().call_later(self.rate_log.interval_s, self._flush_logs)

    async def stop(self, drain_seconds: float = 0.0) -> None:
        """Refuse new calls (503), let calls finish for up to `drain_seconds`, hang up the rest, give their handlers
        `FINISH_GRACE_S` to store what the callers left, close."""
        self.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_seconds
        while self.calls and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for call in list(self.calls.values()):
            self.dialogs.end_call(call, "server stopping", send_bye=True)
        deadline = loop.time() + 2.0
        while self.transactions.client and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if self.tasks:  # the calls have ended: their handlers finish what the callers left (tickets) first
            await asyncio.wait(list(self.tasks), timeout=FINISH_GRACE_S)
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        self.transactions.close()
        self.transport.close()
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self.rate_log.flush()

    def resources(self) -> dict[str, int]:
        """What is held right now: calls, transactions, timers, RTP ports, clock subscribers, tasks."""
        timers = self.transactions.timer_count + sum(1 for c in self.calls.values() if c.ring_handle is not None)
        return {"calls": len(self.calls), "server_transactions": len(self.transactions.server),
                "client_transactions": len(self.transactions.client), "timers": timers,
                "rtp_ports": len(self.ports.in_use), "media_sessions": len(self.clock), "tasks": len(self.tasks)}

    def count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            self.rate_log(("task", type(exc).__name__), logging.ERROR, "call task failed", exc_info=exc)

    # ----- sending ----------------------------------------------------------------------------------------
    def _send(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.send(data, addr)

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        self._send(data, addr)

    def local_ip(self, peer: tuple[str, int]) -> str:
        """The address we put in SDP and Contact toward `peer`."""
        return self.config.advertised_host or self.route_ip(peer)

    def route_ip(self, peer: tuple[str, int]) -> str:
        """This machine's address toward `peer`: the listen address, else the route's source address."""
        return self.transport.route_ip(peer)

    def response(self, req: Request, status: int, addr: tuple[str, int], to_tag: str | None = None,
                 extra: list[tuple[str, str]] | None = None, body: bytes = b"") -> bytes:
        headers = list(extra or [])
        headers.append(("Server", self.config.user_agent))
        resp = build_response(req, status, to_tag=to_tag, extra=headers, body=body,
                              content_type="application/sdp" if body else None)
        return bytes(stamp_via(resp, addr))

    def new_tx(self, summary: RequestSummary, addr: tuple[str, int]) -> ServerTransaction:
        return self.transactions.new_server(summary, lambda data: self._send(data, addr))

    # ----- receiving --------------------------------------------------------------------------------------
    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self._handle(data, (addr[0], addr[1]))
        except Exception:  # never into the event loop: log and carry on
            self.count("internal_errors")
            self.rate_log(("error", addr[0]), logging.ERROR, "error handling a datagram from %s", addr[0],
                          exc_info=True)

    def _handle(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data.strip(b"\r\n"):
            return  # CRLF keep-alive
        refusal = self.guard.check_datagram(data, addr[0])
        if refusal is not None:
            self._drop(addr, refusal.kind, refusal.reason)
            return
        if self.referrals and data.startswith(b"NOTIFY ") and self.dialogs.referrals.on_notify(data, addr):
            return
        verdict = screen(data)
        if verdict.drop_reason:
            self._drop(addr, "malformed", verdict.drop_reason)
            return
        if verdict.reject is not None:
            self.count("rejected")
            self.rate_log(("answered", addr[0]), logging.WARNING, "answered from %s: %d %s", addr[0],
                          verdict.reject.status, verdict.reason)
            self._send(bytes(stamp_via(verdict.reject, addr)), addr)
            return
        if verdict.response is not None:
            self._on_response(verdict.response)
            return
        req, summary = verdict.request, verdict.summary
        assert req is not None and summary is not None
        if req.method == "ACK":
            self.dialogs.on_ack(req, summary)
            return
        tx = self.transactions.find(summary)
        if tx is not None:
            self.count("retransmissions_absorbed")
            tx.request_retransmitted()
            return
        if req.method == "INVITE":
            if summary.to.tag:
                self.dialogs.on_reinvite(req, summary, addr, self.dialogs.dialog(summary))
            else:
                self._on_invite(req, summary, addr)
        elif req.method == "CANCEL":
            self.dialogs.on_cancel(req, summary, addr)
        elif req.method == "BYE":
            self.dialogs.on_bye(req, summary, addr)
        elif req.method == "OPTIONS":
            self._on_options(req, summary, addr)

    def _on_options(self, req: Request, summary: RequestSummary, addr: tuple[str, int]) -> None:
        """200 with what we accept; 503 with Retry-After while draining, as an INVITE would get, so that a proxy
        probing its nodes with OPTIONS (Kamailio's dispatcher) stops sending us new calls."""
        tx = self.new_tx(summary, addr)
        tag = None if summary.to.tag else new_tag()
        if self.draining:
            self.count("options_503")
            tx.respond(503, self.response(req, 503, addr, to_tag=tag,
                                          extra=[("Retry-After", str(self.config.retry_after))]))
            return
        tx.respond(200, self.response(req, 200, addr, to_tag=tag, extra=[
            ("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", "")]))

    def _on_response(self, resp: Response) -> None:
        try:
            via = parse_via(split_values(resp.get("Via") or "")[0])
        except (SipParseError, IndexError):
            return
        self.transactions.response(via.branch or "", resp.status)

    def _on_invite(self, req: Request, summary: RequestSummary, addr: tuple[str, int]) -> None:
        """A new INVITE (no To tag): one of a dialog we have, or a new call if the server takes one now."""
        existing = self.calls.get(dialog_key(summary))
        if existing is not None:  # (calls leave self.calls when they end)
            self.dialogs.on_repeated_invite(req, summary, addr, existing)
            return
        busy = [("Retry-After", str(self.config.retry_after))]
        if self.draining:
            self.reject_invite(req, summary, addr, 503, "server is stopping", busy, "stopping")
            return
        if len(self.calls) >= self.config.max_calls:
            self.reject_invite(req, summary, addr, 503, f"call limit {self.config.max_calls} reached", busy,
                               "call_limit")
            return
        from_source = sum(1 for c in self.calls.values() if c.peer[0] == addr[0])
        refusal = self.guard.check_invite(addr[0], from_source)
        if refusal is not None:
            self.reject_invite(req, summary, addr, 503, refusal.reason, busy, refusal.kind)
            return
        self.dialogs.start(req, summary, addr)

    # ----- refusing ---------------------------------------------------------------------------------------
    def _drop(self, addr: tuple[str, int], kind: str, reason: str) -> None:
        """A datagram dropped unanswered: counted by kind, logged at most once per interval per source."""
        self.count("dropped")
        self.dropped[kind] += 1
        self.rate_log(("dropped", addr[0]), logging.WARNING, "dropped from %s: %s", addr[0], reason)

    def reject_invite(self, req: Request, summary: RequestSummary, addr: tuple[str, int], status: int,
                      reason: str, extra: list[tuple[str, str]] | None = None, kind: str = "") -> None:
        """Answer a new INVITE with `status`; counted by `kind` (default: the status) and logged at most once per
        interval per kind and source, so a refused flood logs a summary, not a line per INVITE."""
        tx = self.new_tx(summary, addr)
        self.count(f"invite_{status}")
        kind = kind or str(status)
        self.refused[kind] += 1
        self.rate_log(("refused", kind, addr[0]), logging.INFO, "INVITE %s from %s refused %d: %s", summary.call_id,
                      addr[0], status, reason)
        tx.respond(status, self.response(req, status, addr, to_tag=new_tag(), extra=extra))
