"""Outbound SIP calls (a UAC over asyncio UDP) whose answered leg is a Channel.

`place_call(uri, proxy)` sends an INVITE offering PCMU, PCMA and telephone-event for an RTP port of the
allocator, retransmits it (timer A) until a response, CANCELs at the ring time-out and maps the final response to
an outcome: answered (2xx), busy (486, 600, 603), no_answer (408, 480, 487, time-out) or failed. A 2xx is ACKed
(its retransmissions are ACKed again), its SDP answer starts the RTP session, and the call comes back as an
OutboundChannel: the same paced, jitter-buffered exchange as an inbound SipChannel. `hangup()` sends BYE
(retransmitted until answered, timer F at most); a BYE from the far end is answered 200 and makes the next
`exchange()` raise CallerHungUp; in-dialog OPTIONS and INFO are answered 200, and a re-INVITE (hold, resume) is
answered with our SDP on the same port and the media follows it. An answered call that hears no RTP from the far
end for `rtp_timeout_s` (while it should) is hung up, as an inbound call is. Each call has its own SIP socket,
closed with the RTP session when the call ends. Cancelling `place_call` while the phone rings CANCELs the INVITE
(a 2xx that crosses the CANCEL is hung up). Calls placed with an `OutboundCalls` are counted there until they end,
so a stopping server can wait for them and then hang them all up.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from ivr.channel.base import CallInfo
from ivr.channel.sip import SipChannel
from ivr.lograte import RateLimitedLog
from ivr.logs import mask_number
from ivr.rtp.clock import MediaClock
from ivr.rtp.session import MediaParams, NoFreePortError, PortAllocator, RtpSession
from ivr.sip.call_media import media_params
from ivr.sip.headers import MAGIC_COOKIE, parse_address, parse_via, uri_host_port, uri_user, validate_request
from ivr.sip.message import Request, Response, SipParseError, parse_message, split_values
from ivr.sip.screen import build_response
from ivr.sip.sdp import SdpError, accept_answer, answer_offer, make_offer, parse_sdp, warning
from ivr.sip.transaction import ClientTransaction, SipTimers

__all__ = ["OutboundResult", "OutboundChannel", "OutboundCalls", "place_call", "proxy_of", "outcome_of"]

logger = logging.getLogger(__name__)
_errors = RateLimitedLog(logger)

IN_DIALOG_ALLOW = "ACK, BYE, OPTIONS, INFO"
#: RTP ports for calls placed without an allocator of their own (one range per process)
DEFAULT_PORTS = PortAllocator(30000, 39998)


def outcome_of(status: int | None) -> str:
    """answered (2xx), busy (486, 600, 603), no_answer (408, 480, 487, no final response) or failed."""
    if status is None or status in (408, 480, 487):
        return "no_answer"
    if 200 <= status < 300:
        return "answered"
    if status in (486, 600, 603):
        return "busy"
    return "failed"


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, leg: _Leg) -> None:
        self.leg = leg

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.leg.received(data, (addr[0], addr[1]))
        except Exception as exc:  # never into the event loop, nor a traceback per datagram
            _errors(("datagram", type(exc).__name__), logging.ERROR, "error handling a datagram on outbound call %s",
                    self.leg.call_id, exc_info=True)

    def error_received(self, exc: Exception) -> None:
        logger.debug("outbound SIP socket error: %s", exc)


class _Leg:
    """The SIP side of one outbound call: socket, INVITE transaction, dialog and client transactions."""

    def __init__(self, uri: str, proxy: tuple[str, int], local_host: str, caller_id: str, display: str,
                 timers: SipTimers, calls: OutboundCalls | None = None) -> None:
        self.uri = uri
        self.calls = calls
        if calls is not None:
            calls.add(self)
        self.proxy = proxy
        self.local_host = local_host
        self.timers = timers
        self.call_id = secrets.token_hex(8) + "@" + local_host
        self.local_tag = secrets.token_hex(6)
        name = f'"{display}" ' if display else ""
        self.from_value = f"{name}<sip:{caller_id}@{local_host}>;tag={self.local_tag}"
        self.caller_id = caller_id
        self.to_value = f"<{uri}>"
        self.remote_target = uri
        self.route: list[str] = []
        self.cseq = 1
        self.port = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.invite_responses: asyncio.Queue[Response | None] = asyncio.Queue()  # None: give_up() was called
        self.giving_up = False
        self.client_tx: dict[str, ClientTransaction] = {}
        self.ack: bytes | None = None  # our ACK of the final response, sent again when it is retransmitted
        self.in_dialog = False  # a 2xx established the dialog
        self.ended = False  # BYE sent or received
        self.on_ended: Callable[[], None] | None = None  # the call ended under the channel (far end's BYE, cut)
        self.session: RtpSession | None = None
        self.sdp_id = secrets.randbelow(1 << 30)
        self.sdp_version = 1
        self.remote_cseq = 0  # of the last in-dialog INVITE from the far end
        self.reinvite_ok: bytes | None = None  # our 200 to it, sent again until its ACK
        self.reinvite_acked = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

    # ----- sending ----------------------------------------------------------------------------------------
    def send(self, data: bytes, addr: tuple[str, int] | None = None) -> None:
        if self.transport is not None:
            try:
                self.transport.sendto(data, addr or self.proxy)
            except OSError as exc:
                logger.debug("outbound SIP send failed: %s", exc)

    def request(self, method: str, cseq: int, branch: str, body: bytes = b"") -> Request:
        req = Request(method=method, uri=self.remote_target if self.in_dialog else self.uri)
        req.add("Via", f"SIP/2.0/UDP {self.local_host}:{self.port};branch={branch};rport")
        req.add("Max-Forwards", "70")
        for route in self.route:
            req.add("Route", route)
        req.add("From", self.from_value)
        req.add("To", self.to_value)
        req.add("Call-ID", self.call_id)
        req.add("CSeq", f"{cseq} {method}")
        if method in ("INVITE", "ACK"):
            req.add("Contact", f"<sip:{self.caller_id}@{self.local_host}:{self.port}>")
        req.add("User-Agent", "hotline-ivr")
        if body:
            req.add("Content-Type", "application/sdp")
        req.add("Content-Length", str(len(body)))
        req.body = body
        return req

    def _client_tx(self, req: Request, branch: str) -> asyncio.Future[int | None]:
        """Send a non-INVITE request with timers E/F; the future holds the final status (None: timer F)."""
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

        def finished(ctx: ClientTransaction, status: int | None) -> None:
            self.client_tx.pop(ctx.branch, None)
            if not done.done():
                done.set_result(status)

        self.client_tx[branch] = ClientTransaction(branch, bytes(req), self.send, self.timers, finished)
        return done

    # ----- the INVITE transaction -------------------------------------------------------------------------
    async def invite(self, offer: bytes, ring_timeout_s: float) -> tuple[Response | None, bool]:
        """Send the INVITE and wait for its final response; returns it (None: none came) and whether we CANCELled."""
        loop = asyncio.get_running_loop()
        branch = MAGIC_COOKIE + secrets.token_hex(8)
        data = bytes(self.request("INVITE", 1, branch, offer))
        self.send(data)
        now = loop.time()
        interval, next_send = self.timers.t1, now + self.timers.t1
        ring_end, timer_b = now + ring_timeout_s, now + self.timers.b
        provisional, cancel_end = False, 0.0
        while True:
            if cancel_end:
                wake = cancel_end
            elif provisional:
                wake = ring_end
            else:
                wake = min(next_send, timer_b, ring_end)
            try:
                resp = await asyncio.wait_for(self.invite_responses.get(), max(0.0, wake - loop.time()))
            except TimeoutError:
                resp = None
            if resp is None:  # a timer is due, or the call is given up or closed
                if self.transport is None:
                    return None, bool(cancel_end)
                now = loop.time()
                if self.giving_up:
                    ring_end = min(ring_end, now)
                if (cancel_end and now >= cancel_end) or (
                        not cancel_end and not provisional and (now >= timer_b or now >= ring_end)):
                    return None, bool(cancel_end)  # no CANCEL before a provisional response (RFC 3261 9.1)
                if now >= ring_end and not cancel_end:
                    self._client_tx(self.request("CANCEL", 1, branch), branch)
                    cancel_end = now + self.timers.b
                elif not provisional and now >= next_send:
                    self.send(data)  # timer A
                    interval *= 2
                    next_send = now + interval
                continue
            if resp.status < 200:
                provisional = True
                continue
            self.to_value = resp.get("To") or self.to_value
            if resp.status >= 300:
                self.ack = bytes(self.request("ACK", 1, branch))
            else:
                contact = resp.get_all("Contact")
                if contact:
                    self.remote_target = parse_address(contact[0], "Contact").uri
                self.route = list(reversed(resp.get_all("Record-Route")))
                self.in_dialog = True
                self.ack = bytes(self.request("ACK", 1, MAGIC_COOKIE + secrets.token_hex(8)))
            self.send(self.ack)
            return resp, bool(cancel_end)

    def give_up(self) -> None:
        """Stop ringing now: the INVITE is CANCELled (once it has rung) as at the ring time-out."""
        self.giving_up = True
        self.invite_responses.put_nowait(None)

    # ----- receiving --------------------------------------------------------------------------------------
    def received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            msg = parse_message(data)
        except SipParseError:
            return
        if isinstance(msg, Response):
            self._on_response(msg)
        else:
            self._on_request(msg, addr)

    def _on_response(self, resp: Response) -> None:
        if (resp.get("CSeq") or "").endswith("INVITE"):
            if resp.status >= 200 and self.ack is not None:
                self.send(self.ack)  # a retransmitted final response: our ACK was lost
            else:
                self.invite_responses.put_nowait(resp)
            return
        try:
            branch = parse_via(split_values(resp.get("Via") or "")[0]).branch
        except (SipParseError, IndexError):
            return
        ctx = self.client_tx.get(branch or "")
        if ctx is not None:
            ctx.response(resp.status)

    def _on_request(self, req: Request, addr: tuple[str, int]) -> None:
        if req.method == "ACK":
            if self.reinvite_ok is not None and req.get("CSeq") == f"{self.remote_cseq} ACK":
                self.reinvite_acked.set()
            return
        try:
            summary = validate_request(req, frozenset({"BYE", "OPTIONS", "INFO", "INVITE"}))
        except SipParseError as exc:
            self.send(bytes(build_response(req, exc.status)), addr)
            return
        if (summary.call_id != self.call_id or summary.to.tag != self.local_tag or not self.in_dialog
                or self.ended):
            self.send(bytes(build_response(req, 481)), addr)
        elif req.method == "BYE":
            self.send(bytes(build_response(req, 200)), addr)
            logger.info("outbound call %s: the far end hung up", self.call_id)
            self.ended = True
            if self.on_ended is not None:
                self.on_ended()
            self.close()
        elif req.method in ("OPTIONS", "INFO"):
            self.send(bytes(build_response(req, 200, extra=[("Allow", IN_DIALOG_ALLOW)])), addr)
        elif req.method == "INVITE":
            self._on_reinvite(req, summary.cseq.number, addr)
        else:
            self.send(bytes(build_response(req, 501, extra=[("Allow", IN_DIALOG_ALLOW)])), addr)

    def _on_reinvite(self, req: Request, cseq: int, addr: tuple[str, int]) -> None:
        """An offer inside the dialog (e.g. the far end putting the call on hold): answered 200 with our SDP on the
        same port (sent again until the ACK), and the media follows it."""
        if cseq == self.remote_cseq and self.reinvite_ok is not None:
            self.send(self.reinvite_ok, addr)  # a retransmission: our 200 was lost
            return
        if cseq <= self.remote_cseq or self.session is None:
            self.send(bytes(build_response(req, 500, extra=[("Retry-After", "1")])), addr)
            return
        if not req.body:  # an offer wanted from us: the media stays as it is
            body = bytes(make_offer(self.local_host, self.session.local_port, self.sdp_id, self.sdp_version))
        else:
            try:
                answer, neg = answer_offer(parse_sdp(req.body), self.local_host, self.session.local_port, self.sdp_id,
                                           self.sdp_version + 1)
            except SdpError as exc:
                self.send(bytes(build_response(req, 488, extra=[("Warning", warning(exc))])), addr)
                return
            self.sdp_version += 1
            body = bytes(answer)
            self.session.update(media_params(neg))
            logger.info("outbound call %s re-INVITE: %s %s", self.call_id, neg.codec, neg.direction)
        self.remote_cseq = cseq
        self.reinvite_ok = bytes(build_response(
            req, 200, body=body, content_type="application/sdp",
            extra=[("Contact", f"<sip:{self.caller_id}@{self.local_host}:{self.port}>"), ("Allow", IN_DIALOG_ALLOW)]))
        self.reinvite_acked = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self._until_acked(self.reinvite_ok, addr, self.reinvite_acked))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _until_acked(self, data: bytes, addr: tuple[str, int], acked: asyncio.Event) -> None:
        """Send a 2xx to an INVITE at T1, doubling up to T2, until its ACK or 64 T1 (RFC 3261 13.3.1.4)."""
        loop = asyncio.get_running_loop()
        interval, give_up = self.timers.t1, loop.time() + 64 * self.timers.t1
        while loop.time() < give_up:
            self.send(data, addr)
            try:
                await asyncio.wait_for(acked.wait(), interval)
                return
            except TimeoutError:
                interval = min(2 * interval, self.timers.t2)
        logger.info("outbound call %s: no ACK for our 200 to its re-INVITE", self.call_id)

    # ----- ending -----------------------------------------------------------------------------------------
    def cut(self) -> None:
        """End the call now, without waiting: BYE when it is up (its channel hears CallerHungUp), CANCEL while it
        rings. `close()` follows."""
        if self.in_dialog and not self.ended and self.transport is not None:
            self.ended = True
            self.cseq += 1
            branch = MAGIC_COOKIE + secrets.token_hex(8)
            self._client_tx(self.request("BYE", self.cseq, branch), branch)
            if self.on_ended is not None:
                self.on_ended()
        elif not self.in_dialog:
            self.give_up()

    def lost_media(self, seconds: float) -> None:
        """No RTP from the far end for `seconds`: hang up (BYE) as an inbound call is."""
        logger.info("outbound call %s: no RTP from the far end for %.0f s: hanging up", self.call_id, seconds)
        if self.on_ended is not None:
            self.on_ended()
        _ending.add(task := asyncio.ensure_future(self.hangup()))
        task.add_done_callback(_ending.discard)

    async def hangup(self) -> None:
        """BYE (when the dialog is up), then release the socket and the RTP port."""
        try:
            if self.in_dialog and not self.ended and self.transport is not None:
                self.ended = True
                self.cseq += 1
                branch = MAGIC_COOKIE + secrets.token_hex(8)
                if await self._client_tx(self.request("BYE", self.cseq, branch), branch) is None:
                    logger.info("BYE for outbound call %s got no answer", self.call_id)
        finally:
            self.close()

    def close(self) -> None:
        if self.calls is not None:
            self.calls.discard(self)
        self.invite_responses.put_nowait(None)  # an INVITE still waiting gives up at once
        for task in list(self.tasks):
            task.cancel()
        for ctx in list(self.client_tx.values()):
            ctx._finish(None)
        if self.session is not None:
            self.session.close()
        if self.transport is not None:
            self.transport.close()
            self.transport = None


@dataclass(frozen=True)
class OutboundResult:
    """What became of an outbound call; `channel` is set when it was answered (hang it up when done)."""

    outcome: str  # answered | busy | no_answer | failed
    status: int | None
    call_id: str
    channel: OutboundChannel | None = None


class OutboundChannel(SipChannel):
    """An answered outbound call as a Channel: `exchange()` as a SipChannel, `hangup()` sends BYE."""

    def __init__(self, leg: _Leg, info: CallInfo, session: RtpSession, inband_dtmf: bool) -> None:
        super().__init__(info, session, leg.hangup, inband_dtmf)
        self._leg = leg
        leg.on_ended = self.mark_hung_up


class OutboundCalls:
    """The outbound calls of a server, so that a stopping server can wait for those ringing or up and then hang up
    the rest. A call is kept until its socket closes (after the BYE's answer); it counts until it has ended."""

    def __init__(self) -> None:
        self._legs: set[_Leg] = set()

    def __len__(self) -> int:
        """How many calls are ringing or up."""
        return sum(1 for leg in self._legs if not leg.ended)

    def add(self, leg: _Leg) -> None:
        self._legs.add(leg)

    def discard(self, leg: _Leg) -> None:
        self._legs.discard(leg)

    async def hang_up_all(self, grace_s: float = 2.0) -> int:
        """BYE every call that is up and CANCEL those ringing, wait up to `grace_s` for the far ends to answer (and
        to the BYEs already sent), then close them all (sockets, RTP ports). Returns how many were ringing or up."""
        legs = list(self._legs)
        cut = len(self)
        for leg in legs:
            leg.cut()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while any(leg.client_tx for leg in legs) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for leg in legs:
            leg.close()
        return cut


def proxy_of(uri: str, default: tuple[str, int] | None) -> tuple[str, int]:
    """Where to send an INVITE for `uri`: its host:port when it names a port, else `default` (the trunk), else
    its host on port 5060."""
    host, port = uri_host_port(uri)
    if port is not None:
        return host, port
    return default or (host, 5060)


async def place_call(uri: str, proxy: tuple[str, int], *, local_host: str = "127.0.0.1", caller_id: str = "12345",
                     display: str = "", ring_timeout_s: float = 30.0, ports: PortAllocator | None = None,
                     clock: MediaClock | None = None, t1: float = 0.5, advertise: str | None = None,
                     rtp_timeout_s: float = 60.0, calls: OutboundCalls | None = None) -> OutboundResult:
    """Call `uri` through `proxy` (host, port) from sockets bound to `local_host`; `advertise` (default
    `local_host`) is the address put in Via, Contact and SDP; an answered call with no RTP from the far end for
    `rtp_timeout_s` is hung up (0: never); `calls` counts the call until it ends. See the module docstring for
    the outcomes."""
    loop = asyncio.get_running_loop()
    leg = _Leg(uri, proxy, advertise or local_host, caller_id, display, SipTimers(t1=t1), calls)
    try:
        transport, _ = await loop.create_datagram_endpoint(lambda: _Endpoint(leg), local_addr=(local_host, 0))
    except BaseException:
        leg.close()
        raise
    leg.transport = transport
    leg.port = transport.get_extra_info("sockname")[1]
    session = RtpSession(clock or MediaClock(), ports or DEFAULT_PORTS,
                         MediaParams("PCMU", 0, None, ("0.0.0.0", 0), sending=False, receiving=False),
                         rx_timeout_ticks=int(rtp_timeout_s / 0.02),
                         on_rx_timeout=lambda: leg.lost_media(rtp_timeout_s))
    leg.session = session
    try:
        rtp_port = session.bind(local_host)
    except NoFreePortError as exc:
        leg.close()
        logger.warning("outbound call to %s not placed: %s", mask_number(uri_user(uri)), exc)
        return OutboundResult("failed", None, leg.call_id)
    offer = bytes(make_offer(advertise or local_host, rtp_port, leg.sdp_id))
    channel: OutboundChannel | None = None
    inviting = asyncio.ensure_future(leg.invite(offer, ring_timeout_s))
    try:
        try:
            final, cancelled = await asyncio.shield(inviting)
        except asyncio.CancelledError:  # whoever wanted the call has gone: stop the phone ringing
            leg.give_up()
            _withdrawing.add(task := asyncio.ensure_future(_withdraw(leg, inviting)))
            task.add_done_callback(_withdrawing.discard)
            raise
        status = final.status if final is not None else None
        outcome = "no_answer" if cancelled else outcome_of(status)
        if final is not None and 200 <= final.status < 300:
            try:
                neg = accept_answer(parse_sdp(final.body), local_host=local_host)
            except SdpError as exc:
                logger.warning("outbound call %s: unusable SDP answer (%s)", leg.call_id, exc)
                outcome = "failed"
            else:
                session.update(media_params(neg))
                await session.start()
                info = CallInfo(call_id=leg.call_id, caller=uri_user(uri), called=caller_id,
                                extra={"codec": neg.codec, "direction": "outbound"})
                channel = OutboundChannel(leg, info, session, inband_dtmf=neg.dtmf_payload_type is None)
            if outcome != "answered":
                await leg.hangup()
                channel = None
        logger.info("outbound call %s to %s: %s (%s)", leg.call_id, mask_number(uri_user(uri)), outcome, status)
        return OutboundResult(outcome, status, leg.call_id, channel)
    finally:
        if channel is None and inviting.done():
            leg.close()


_withdrawing: set[asyncio.Future[None]] = set()  # given-up INVITEs still being CANCELled
_ending: set[asyncio.Future[None]] = set()  # calls being hung up for lack of RTP


async def _withdraw(leg: _Leg, inviting: asyncio.Future[tuple[Response | None, bool]]) -> None:
    """Finish an INVITE given up while it rang: its CANCEL is answered (or times out); a 2xx that crossed the
    CANCEL is hung up (BYE)."""
    try:
        final, _ = await inviting
        if final is not None and 200 <= final.status < 300:
            logger.info("outbound call %s was answered as it was given up: hanging up", leg.call_id)
            await leg.hangup()
    finally:
        leg.close()
