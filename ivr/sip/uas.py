"""The SIP user agent server over asyncio UDP: answers calls and runs an injected handler per call.

`SipServer(config, handler)` listens on UDP; for each INVITE it negotiates G.711 (+ RFC 4733), opens an RTP session,
answers 100/180/200 and, once the ACK arrives, runs `await handler(channel)` with a SipChannel. The call ends with
the caller's BYE (the channel then raises CallerHungUp), with `channel.hangup()` or when the handler returns (we
send BYE). CANCEL before the answer gets 487; OPTIONS 200 (503 while draining); re-INVITE changes
codec/direction/address; unknown methods 501, Require 420, offers without PCMU/PCMA 488, other versions 505, the
call limit 503 with Retry-After. An INVITE without SDP (delayed offer, or a re-INVITE without one) gets our offer in
the 200 and its answer is read from the ACK. Calls are dialogs keyed by Call-ID and the caller's From tag: an INVITE
without To tag matching a call's first INVITE (same CSeq) on another branch is a merged request (RFC 3261 8.2.2.2,
482 Loop Detected); with a new CSeq it is that dialog's re-INVITE (an RFC 2543 peer, as sofia-sip and chan_sip take
it); with another From tag it is another call, even with the same Call-ID.
We only ever send BYE, and never answer an authentication challenge (the front end holds no credentials). Nothing
raises into the event loop: every datagram is handled inside a guard, bad ones are answered statelessly or dropped
and logged once.
"""
from __future__ import annotations

import asyncio
import logging
import random
import re
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ivr.channel.base import CallInfo, TransferResult
from ivr.channel.sip import SipChannel
from ivr.lograte import RateLimitedLog
from ivr.rtp.clock import MediaClock
from ivr.rtp.session import MediaParams, NoFreePortError, PortAllocator, RtpSession
from ivr.sip.headers import MAGIC_COOKIE, RequestSummary, parse_via, validate_request
from ivr.sip.message import Request, Response, SipParseError, parse_message, split_values
from ivr.sip.protection import Guard, ProtectionConfig
from ivr.sip.refer import Referral, refer_headers
from ivr.sip.screen import ALLOW, build_response, screen
from ivr.sip.sdp import (Negotiated, SdpError, SdpNegotiationError, accept_answer, answer_offer, make_offer,
                         parse_sdp, warning)
from ivr.sip.transaction import ClientTransaction, ServerTransaction, SipTimers, transaction_key

__all__ = ["SipServer", "SipServerConfig", "CallHandler", "mask_number"]

logger = logging.getLogger(__name__)

CallHandler = Callable[[SipChannel], Awaitable[None]]
_DIGITS_RE = re.compile(r"\d{5,}")


def mask_number(text: str) -> str:
    """Mask phone numbers for logs: keep the first 3 and last 2 digits of each run of 5 or more digits."""
    return _DIGITS_RE.sub(lambda m: m.group(0)[:3] + "*" * (len(m.group(0)) - 5) + m.group(0)[-2:], text)


@dataclass(frozen=True)
class SipServerConfig:
    host: str = "0.0.0.0"
    port: int = 5060
    advertised_host: str | None = None  # address put in SDP and Contact; default: the route toward the caller
    rtp_port_min: int = 20000
    rtp_port_max: int = 30000
    max_calls: int = 400
    retry_after: int = 10
    ring_seconds: float = 0.0  # time between 180 Ringing and 200 OK
    timers: SipTimers = field(default_factory=SipTimers)
    protection: ProtectionConfig = field(default_factory=ProtectionConfig)
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    user_agent: str = "hotline-ivr"
    rtp_timeout: float = 60.0  # hang up after this long without RTP from a caller who should be sending (0 = off)


@dataclass
class Call:
    call_id: str
    peer: tuple[str, int]
    invite: Request
    summary: RequestSummary
    local_tag: str
    local_host: str
    invite_tx: ServerTransaction
    session: RtpSession
    negotiated: Negotiated
    answer_sdp: bytes
    session_id: int
    sdp_version: int = 1
    state: str = "early"  # early -> answered (200 sent) -> confirmed (ACK) -> ended
    remote_cseq: int = 0
    local_cseq: int = 0
    pending_tx: ServerTransaction | None = None  # a 2xx waiting for its ACK
    channel: SipChannel | None = None
    task: asyncio.Task[None] | None = None
    ring_handle: asyncio.TimerHandle | None = None
    end_reason: str = ""
    awaiting_answer: bool = False  # we offered in the 200 (delayed offer): the answer comes in the ACK

    reoffered: bool = False  # our 200 to a re-INVITE without SDP offered again: the ACK may carry an answer

    @property
    def remote_tag(self) -> str | None:
        return self.summary.from_.tag

    @property
    def key(self) -> tuple[str, str]:
        return dialog_key(self.summary)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: SipServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.server.datagram_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        logger.debug("SIP socket error: %s", exc)


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
        self._flush_timer: asyncio.TimerHandle | None = None
        self.calls: dict[tuple[str, str], Call] = {}  # dialog_key() -> call
        self.server_tx: dict[tuple[str, ...], ServerTransaction] = {}
        self.client_tx: dict[str, ClientTransaction] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.counters: dict[str, int] = {}
        self.draining = False
        self.port = config.port
        self._transport: asyncio.DatagramTransport | None = None
        self._local_ips: dict[str, str] = {}
        self.ended_calls: list[tuple[str, str]] = []  # (call id, reason), the last 1000
        self.referrals: dict[tuple[str, str], Referral] = {}  # dialog_key() -> the REFER in progress on it

    # ----- life cycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.config.host, self.config.port))
        self._transport = transport  # type: ignore[assignment]
        self.port = transport.get_extra_info("sockname")[1]
        logger.info("SIP listening on %s:%d (UDP)", self.config.host, self.port)
        self._flush_logs()

    def _flush_logs(self) -> None:
        """Report what the rate-limited log held back, every interval until stop()."""
        self.rate_log.flush()
        self._flush_timer = asyncio.get_running_loop().call_later(self.rate_log.interval_s, self._flush_logs)

    async def stop(self, drain_seconds: float = 0.0) -> None:
        """Refuse new calls (503), let calls finish for up to `drain_seconds`, hang up the rest, close."""
        self.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_seconds
        while self.calls and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for call in list(self.calls.values()):
            self._end_call(call, "server stopping", send_bye=True)
        deadline = loop.time() + 2.0
        while self.client_tx and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        for ctx in list(self.client_tx.values()):
            ctx._finish(None)
        for tx in list(self.server_tx.values()):
            tx.terminate()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self.rate_log.flush()

    def resources(self) -> dict[str, int]:
        """What is held right now: calls, transactions, timers, RTP ports, clock subscribers, tasks."""
        timers = sum(t.timer_count for t in self.server_tx.values()) + sum(
            t.timer_count for t in self.client_tx.values()) + sum(
            1 for c in self.calls.values() if c.ring_handle is not None)
        return {"calls": len(self.calls), "server_transactions": len(self.server_tx),
                "client_transactions": len(self.client_tx), "timers": timers, "rtp_ports": len(self.ports.in_use),
                "media_sessions": len(self.clock), "tasks": len(self.tasks)}

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    # ----- sending ----------------------------------------------------------------------------------------
    def _send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._transport is not None:
            try:
                self._transport.sendto(data, addr)
            except OSError as exc:
                logger.debug("SIP send to %s failed: %s", addr, exc)

    def _local_ip(self, peer: tuple[str, int]) -> str:
        return self.config.advertised_host or self.route_ip(peer)

    def route_ip(self, peer: tuple[str, int]) -> str:
        """This machine's address toward `peer`: the listen address, else the route's source address."""
        if self.config.host not in ("0.0.0.0", "::", ""):
            return self.config.host
        ip = self._local_ips.get(peer[0])
        if ip is None:
            try:
                with socket.socket(socket.AF_INET6 if ":" in peer[0] else socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.connect((peer[0], peer[1] or 5060))
                    ip = s.getsockname()[0]
            except OSError:
                ip = "127.0.0.1"
            if len(self._local_ips) > 1000:
                self._local_ips.clear()
            self._local_ips[peer[0]] = ip
        return ip

    @staticmethod
    def _stamp_via(resp: Response, addr: tuple[str, int]) -> Response:
        """RFC 3261 18.2.1 / RFC 3581: add received= (and rport=) to the top Via of a response."""
        for h in resp.headers:
            if h.key != "via":
                continue
            values = split_values(h.text)
            try:
                via = parse_via(values[0])
            except SipParseError:
                return resp
            top = values[0]
            if via.host != addr[0]:
                top += f";received={addr[0]}"
            if via.has_param("rport") and via.param("rport") is None:
                top = re.sub(r";[ \t]*rport(?=[ \t]*(;|$))", f";rport={addr[1]}", top, count=1)
            h.value = ", ".join([top, *values[1:]])
            return resp
        return resp

    def _response(self, req: Request, status: int, addr: tuple[str, int], to_tag: str | None = None,
                  extra: list[tuple[str, str]] | None = None, body: bytes = b"") -> bytes:
        headers = list(extra or [])
        headers.append(("Server", self.config.user_agent))
        resp = build_response(req, status, to_tag=to_tag, extra=headers, body=body,
                              content_type="application/sdp" if body else None)
        return bytes(self._stamp_via(resp, addr))

    def _new_tx(self, summary: RequestSummary, addr: tuple[str, int]) -> ServerTransaction:
        key = transaction_key(summary)
        tx = ServerTransaction(key, summary.method, lambda data: self._send(data, addr), self.config.timers,
                               self._forget_tx)
        self.server_tx[key] = tx
        return tx

    def _forget_tx(self, tx: ServerTransaction) -> None:
        if self.server_tx.get(tx.key) is tx:
            del self.server_tx[tx.key]

    # ----- receiving --------------------------------------------------------------------------------------
    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self._handle(data, (addr[0], addr[1]))
        except Exception:  # never into the event loop: log and carry on
            self._count("internal_errors")
            self.rate_log(("error", addr[0]), logging.ERROR, "error handling a datagram from %s", addr[0],
                          exc_info=True)

    def _handle(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data.strip(b"\r\n"):
            return  # CRLF keep-alive
        refusal = self.guard.check_datagram(data, addr[0])
        if refusal is not None:
            self._drop(addr, refusal.kind, refusal.reason)
            return
        if self.referrals and data.startswith(b"NOTIFY ") and self._on_notify(data, addr):
            return
        verdict = screen(data)
        if verdict.drop_reason:
            self._drop(addr, "malformed", verdict.drop_reason)
            return
        if verdict.reject is not None:
            self._count("rejected")
            self.rate_log(("answered", addr[0]), logging.WARNING, "answered from %s: %d %s", addr[0],
                          verdict.reject.status, verdict.reason)
            self._send(bytes(self._stamp_via(verdict.reject, addr)), addr)
            return
        if verdict.response is not None:
            self._on_response(verdict.response)
            return
        req, summary = verdict.request, verdict.summary
        assert req is not None and summary is not None
        if req.method == "ACK":
            self._on_ack(req, summary)
            return
        tx = self.server_tx.get(transaction_key(summary))
        if tx is not None:
            self._count("retransmissions_absorbed")
            tx.request_retransmitted()
            return
        if req.method == "INVITE":
            if summary.to.tag:
                self._on_reinvite(req, summary, addr, self._dialog(summary))
            else:
                self._on_invite(req, summary, addr)
        elif req.method == "CANCEL":
            self._on_cancel(req, summary, addr)
        elif req.method == "BYE":
            self._on_bye(req, summary, addr)
        elif req.method == "OPTIONS":
            self._on_options(req, summary, addr)

    def _on_options(self, req: Request, summary: RequestSummary, addr: tuple[str, int]) -> None:
        """200 with what we accept; 503 with Retry-After while draining, as an INVITE would get, so that a proxy
        probing its nodes with OPTIONS (Kamailio's dispatcher) stops sending us new calls."""
        tx = self._new_tx(summary, addr)
        tag = None if summary.to.tag else _tag()
        if self.draining:
            self._count("options_503")
            tx.respond(503, self._response(req, 503, addr, to_tag=tag,
                                           extra=[("Retry-After", str(self.config.retry_after))]))
            return
        tx.respond(200, self._response(req, 200, addr, to_tag=tag, extra=[
            ("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", "")]))

    def _on_response(self, resp: Response) -> None:
        try:
            via = parse_via(split_values(resp.get("Via") or "")[0])
        except (SipParseError, IndexError):
            return
        ctx = self.client_tx.get(via.branch or "")
        if ctx is not None:
            ctx.response(resp.status)

    # ----- INVITE -----------------------------------------------------------------------------------------
    def _drop(self, addr: tuple[str, int], kind: str, reason: str) -> None:
        """A datagram dropped unanswered: counted by kind, logged at most once per interval per source."""
        self._count("dropped")
        self.dropped[kind] += 1
        self.rate_log(("dropped", addr[0]), logging.WARNING, "dropped from %s: %s", addr[0], reason)

    def _reject_invite(self, req: Request, summary: RequestSummary, addr: tuple[str, int], status: int,
                       reason: str, extra: list[tuple[str, str]] | None = None, kind: str = "") -> None:
        """Answer a new INVITE with `status`; counted by `kind` (default: the status) and logged at most once per
        interval per kind and source, so a refused flood logs a summary, not a line per INVITE."""
        tx = self._new_tx(summary, addr)
        self._count(f"invite_{status}")
        kind = kind or str(status)
        self.refused[kind] += 1
        self.rate_log(("refused", kind, addr[0]), logging.INFO, "INVITE %s from %s refused %d: %s", summary.call_id,
                      addr[0], status, reason)
        tx.respond(status, self._response(req, status, addr, to_tag=_tag(), extra=extra))

    def _dialog(self, summary: RequestSummary) -> Call | None:
        """The call an in-dialog request (To tag set) belongs to, if it is still going."""
        call = self.calls.get(dialog_key(summary))
        if call is None or summary.to.tag != call.local_tag or call.state == "ended":
            return None
        return call

    def _on_invite(self, req: Request, summary: RequestSummary, addr: tuple[str, int]) -> None:
        existing = self.calls.get(dialog_key(summary))
        if existing is not None:  # (calls leave self.calls when they end)
            first = summary.cseq.number == existing.summary.cseq.number
            if first and transaction_key(summary) == existing.invite_tx.key:  # after its transaction ended
                self._count("retransmissions_absorbed")
                if existing.invite_tx.last_response is not None:
                    self._send(existing.invite_tx.last_response, addr)
            elif first and existing.invite_tx.state != "terminated":
                self._reject_invite(req, summary, addr, 482, "merged request (same From tag, Call-ID and CSeq)",
                                    kind="merged")
            else:  # another CSeq (or the first one's, answered and done): this dialog's re-INVITE
                self._on_reinvite(req, summary, addr, existing)
            return
        busy = [("Retry-After", str(self.config.retry_after))]
        if self.draining:
            self._reject_invite(req, summary, addr, 503, "server is stopping", busy, "stopping")
            return
        if len(self.calls) >= self.config.max_calls:
            self._reject_invite(req, summary, addr, 503, f"call limit {self.config.max_calls} reached", busy,
                                "call_limit")
            return
        from_source = sum(1 for c in self.calls.values() if c.peer[0] == addr[0])
        refusal = self.guard.check_invite(addr[0], from_source)
        if refusal is not None:
            self._reject_invite(req, summary, addr, 503, refusal.reason, busy, refusal.kind)
            return
        local_host = self._local_ip(addr)
        session_id = random.randint(1, 2**31)
        try:
            offer = parse_sdp(req.body) if req.body else None
            session = RtpSession(self.clock, self.ports, MediaParams("PCMU", 0, None, ("0.0.0.0", 0), False, False),
                                 rx_timeout_ticks=int(self.config.rtp_timeout / 0.02))
            port = session.bind("0.0.0.0" if ":" not in local_host else "::")
        except SdpError as exc:
            self._reject_invite(req, summary, addr, 400, f"bad SDP: {exc}", kind="bad_sdp")
            return
        except NoFreePortError as exc:
            self._reject_invite(req, summary, addr, 503, str(exc), busy, "no_rtp_port")
            return
        if offer is None:  # delayed offer: we offer in the 200, the caller answers in the ACK
            answer = make_offer(local_host, port, session_id, 1, self.config.codecs)
            neg = Negotiated(self.config.codecs[0], 0 if self.config.codecs[0] == "PCMU" else 8, None, "0.0.0.0", 0,
                             "inactive")
        else:
            try:
                answer, neg = answer_offer(offer, local_host, port, session_id, 1, self.config.codecs)
            except SdpNegotiationError as exc:
                session.close()
                self._reject_invite(req, summary, addr, 488, str(exc), [("Warning", warning(exc))],
                                    "not_acceptable")
                return
            session.update(media_params(neg))
        tx = self._new_tx(summary, addr)
        call = Call(call_id=summary.call_id, peer=addr, invite=req, summary=summary, local_tag=_tag(),
                    local_host=local_host, invite_tx=tx, session=session, negotiated=neg,
                    answer_sdp=bytes(answer), session_id=session_id, remote_cseq=summary.cseq.number,
                    awaiting_answer=offer is None)
        self.calls[call.key] = call
        session.on_rx_timeout = lambda: self._end_call(call, "no RTP from the caller (timeout)", send_bye=True)
        self._count("calls")
        logger.info("call %s from %s to %s (%s)", call.call_id, mask_number(summary.from_.uri), mask_number(req.uri),
                    "delayed offer" if offer is None else f"{neg.codec}, DTMF "
                    + ("RFC 4733" if neg.dtmf_payload_type is not None else "in-band"))
        tx.respond(100, self._response(req, 100, addr))
        self._spawn(self._setup(call))

    async def _setup(self, call: Call) -> None:
        await call.session.start()
        if call.state != "early":
            return
        if self.config.ring_seconds > 0:
            call.invite_tx.respond(180, self._response(call.invite, 180, call.peer, to_tag=call.local_tag,
                                                       extra=[("Contact", self._contact(call))]))
            loop = asyncio.get_running_loop()
            call.ring_handle = loop.call_later(self.config.ring_seconds, self._answer, call)
        else:
            self._answer(call)

    def _contact(self, call: Call) -> str:
        host = f"[{call.local_host}]" if ":" in call.local_host else call.local_host
        return f"<sip:ivr@{host}:{self.port}>"

    def _answer(self, call: Call) -> None:
        call.ring_handle = None
        if call.state != "early":
            return
        call.state = "answered"
        call.pending_tx = call.invite_tx
        call.invite_tx.on_ack = lambda: self._confirmed(call)
        call.invite_tx.on_timeout = lambda: self._end_call(call, "no ACK for 200 (timer H)", send_bye=True)
        call.invite_tx.respond(200, self._response(
            call.invite, 200, call.peer, to_tag=call.local_tag, body=call.answer_sdp,
            extra=[("Contact", self._contact(call)), ("Allow", ALLOW), ("Supported", "")]))

    def _confirmed(self, call: Call) -> None:
        if call.state != "answered":
            return
        call.state = "confirmed"
        caller = call.summary.from_.uri
        user = caller.split(":", 1)[-1].split("@", 1)[0].split(";", 1)[0]
        called = call.invite.uri.split(":", 1)[-1].split("@", 1)[0].split(";", 1)[0]
        info = CallInfo(call_id=call.call_id, caller=user, called=called,
                        extra={"codec": call.negotiated.codec, "remote": f"{call.peer[0]}:{call.peer[1]}"})
        channel = SipChannel(info, call.session, lambda: self._hangup(call),
                             inband_dtmf=call.negotiated.dtmf_payload_type is None,
                             refer_cb=lambda target, timeout_s: self._refer(call, target, timeout_s))
        call.channel = channel
        call.task = self._spawn(self._run_handler(call, channel))

    async def _run_handler(self, call: Call, channel: SipChannel) -> None:
        try:
            await self.handler(channel)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if type(exc).__name__ != "CallerHungUp":  # a bug every call hits: a traceback every 10 s, not each
                self.rate_log(("handler", type(exc).__name__), logging.ERROR, "call handler failed for %s",
                              call.call_id, exc_info=True)
        finally:
            if call.state != "ended":
                self._end_call(call, "handler finished", send_bye=True)

    async def _hangup(self, call: Call) -> None:
        self._end_call(call, "IVR hung up", send_bye=True)

    async def _refer(self, call: Call, target: str, timeout_s: float) -> TransferResult:
        referral = self.referrals[call.key] = Referral(target)
        try:
            self._send_request(call, "REFER", refer_headers(target, self._contact(call)), referral.on_response)
            result = await referral.wait(timeout_s)
        finally:
            self.referrals.pop(call.key, None)
        logger.info("call %s REFER to %s: %s", call.call_id, mask_number(target), result.reason or "transferred")
        if result.ok:
            self._end_call(call, "transferred by REFER", send_bye=True)
        return result

    def _on_notify(self, data: bytes, addr: tuple[str, int]) -> bool:
        """A NOTIFY about a REFER of ours: answer 200 and pass it on. False: not one (screen() answers it)."""
        try:
            req = parse_message(data)
            if not isinstance(req, Request):
                return False
            call = self._dialog(validate_request(req, frozenset({"NOTIFY"})))
        except SipParseError:
            return False
        referral = self.referrals.get(call.key) if call is not None else None
        if referral is None:
            return False
        self._send(self._response(req, 200, addr), addr)
        referral.on_notify(req)
        return True

    def _on_reinvite(self, req: Request, summary: RequestSummary, addr: tuple[str, int], call: Call | None) -> None:
        if call is None:
            tx = self._new_tx(summary, addr)
            tx.respond(481, self._response(req, 481, addr))
            return
        tx = self._new_tx(summary, addr)
        if call.pending_tx is not None or call.state == "early":
            tx.respond(491, self._response(req, 491, addr))
            return
        if summary.cseq.number <= call.remote_cseq:
            tx.respond(500, self._response(req, 500, addr, extra=[("Retry-After", "1")]))
            return
        call.remote_cseq = summary.cseq.number
        call.reoffered = not req.body  # our current description goes in the 200 as an offer
        if req.body:
            try:
                answer, neg = answer_offer(parse_sdp(req.body), call.local_host, call.session.local_port,
                                           call.session_id, call.sdp_version, self.config.codecs)
            except SdpError as exc:
                tx.respond(488, self._response(req, 488, addr, extra=[("Warning", warning(exc))]))
                return
            body = bytes(answer)
            if _without_origin(body) != _without_origin(call.answer_sdp):
                call.sdp_version += 1
                answer, neg = answer_offer(parse_sdp(req.body), call.local_host, call.session.local_port,
                                           call.session_id, call.sdp_version, self.config.codecs)
                body = bytes(answer)
            call.answer_sdp = body
            call.negotiated = neg
            call.session.update(media_params(neg))
            logger.info("call %s re-INVITE: %s %s", call.call_id, neg.codec, neg.direction)
        call.pending_tx = tx
        tx.on_timeout = lambda: self._end_call(call, "no ACK for re-INVITE 200 (timer H)", send_bye=True)
        tx.respond(200, self._response(req, 200, addr, to_tag=call.local_tag, body=call.answer_sdp,
                                       extra=[("Contact", self._contact(call)), ("Allow", ALLOW)]))

    def _on_ack(self, req: Request, summary: RequestSummary) -> None:
        tx = self.server_tx.get(transaction_key(summary))
        if tx is not None and tx.final_status is not None and tx.final_status >= 300:
            tx.ack()
            return
        call = self._dialog(summary)
        if call is None or call.pending_tx is None:
            return
        if call.awaiting_answer or (call.reoffered and req.body):  # (an empty ACK to a re-offer keeps the media)
            try:
                neg = accept_answer(parse_sdp(req.body), self.config.codecs, call.local_host)
            except SdpError as exc:
                call.pending_tx.terminate()
                self._end_call(call, f"no usable SDP answer in the ACK ({exc})", send_bye=True)
                return
            call.awaiting_answer = False
            call.negotiated = neg
            call.session.update(media_params(neg))
        call.reoffered = False
        pending, call.pending_tx = call.pending_tx, None
        pending.ack()

    def _on_cancel(self, req: Request, summary: RequestSummary, addr: tuple[str, int]) -> None:
        tx = self._new_tx(summary, addr)
        invite_tx = self.server_tx.get(transaction_key(summary, "INVITE"))
        call = self.calls.get(dialog_key(summary))
        if invite_tx is None:
            tx.respond(481, self._response(req, 481, addr))
            return
        tag = call.local_tag if call is not None else None
        tx.respond(200, self._response(req, 200, addr, to_tag=tag))
        if invite_tx.final_status is None and call is not None and call.state == "early":
            invite_tx.respond(487, self._response(call.invite, 487, addr, to_tag=call.local_tag))
            self._end_call(call, "caller cancelled", send_bye=False)

    def _on_bye(self, req: Request, summary: RequestSummary, addr: tuple[str, int]) -> None:
        tx = self._new_tx(summary, addr)
        call = self._dialog(summary)
        if call is None:
            tx.respond(481, self._response(req, 481, addr))
            return
        tx.respond(200, self._response(req, 200, addr))
        self._end_call(call, "caller hung up", send_bye=False)

    # ----- ending -----------------------------------------------------------------------------------------
    def _end_call(self, call: Call, reason: str, send_bye: bool) -> None:
        if call.state == "ended":
            return
        answered = call.state in ("answered", "confirmed")
        call.state = "ended"
        call.end_reason = reason
        if call.key in self.referrals:
            self.referrals[call.key].on_call_ended(reason)
        if call.ring_handle is not None:
            call.ring_handle.cancel()
            call.ring_handle = None
        if call.channel is not None:
            call.channel.mark_hung_up()
        if send_bye and answered:
            self._send_bye(call)
        call.session.close()
        for tx in (call.invite_tx, call.pending_tx):
            if tx is not None and tx.final_status is not None and tx.final_status < 300:
                tx.terminate()
        call.pending_tx = None
        self.calls.pop(call.key, None)
        self.ended_calls.append((call.call_id, reason))
        del self.ended_calls[:-1000]
        stats = call.session.stats
        logger.info("call %s ended: %s (rtp sent %d, send errors %d, received %d, dtmf %d)", call.call_id, reason,
                    stats.sent, stats.send_errors, stats.received, stats.dtmf_events)

    def _send_bye(self, call: Call) -> None:
        self._send_request(call, "BYE")

    def _send_request(self, call: Call, method: str, extra: list[tuple[str, str]] | None = None,
                      on_status: Callable[[int | None], None] | None = None) -> None:
        call.local_cseq += 1
        branch = MAGIC_COOKIE + f"{random.getrandbits(64):016x}"
        target = call.summary.contact.uri if call.summary.contact else call.summary.from_.uri
        host = f"[{call.local_host}]" if ":" in call.local_host else call.local_host
        req = Request(method=method, uri=target)
        req.add("Via", f"SIP/2.0/UDP {host}:{self.port};branch={branch};rport")
        req.add("Max-Forwards", "70")
        for route in call.invite.get_all("Record-Route"):
            req.add("Route", route)
        to_value = call.invite.get("To") or ""
        req.add("From", f"{to_value};tag={call.local_tag}")
        req.add("To", call.invite.get("From") or "")
        req.add("Call-ID", call.call_id)
        req.add("CSeq", f"{call.local_cseq} {method}")
        for name, value in extra or []:
            req.add(name, value)
        req.add("User-Agent", self.config.user_agent)
        req.add("Content-Length", "0")
        peer = call.peer

        def done(ctx: ClientTransaction, status: int | None) -> None:
            self.client_tx.pop(ctx.branch, None)
            if status is None:
                logger.info("%s for %s got no answer", method, call.call_id)
            if on_status is not None:
                on_status(status)

        self.client_tx[branch] = ClientTransaction(branch, bytes(req), lambda d: self._send(d, peer),
                                                   self.config.timers, done)

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self.rate_log(("task", type(exc).__name__), logging.ERROR, "call task failed", exc_info=exc)


def dialog_key(summary: RequestSummary) -> tuple[str, str]:
    """What tells the caller's dialogs apart (RFC 3261 12): the Call-ID and the caller's From tag."""
    return summary.call_id, summary.from_.tag or ""


def _tag() -> str:
    return f"{random.getrandbits(48):012x}"


def media_params(neg: Negotiated) -> MediaParams:
    """The RTP session's parameters for a negotiated SDP offer/answer."""
    return MediaParams(neg.codec, neg.payload_type, neg.dtmf_payload_type, (neg.remote_host, neg.remote_port),
                       neg.sending, neg.direction in ("sendrecv", "recvonly"))


def _without_origin(sdp: bytes) -> bytes:
    return b"\r\n".join(line for line in sdp.split(b"\r\n") if not line.startswith(b"o="))

