"""The calls in progress and what SIP does to them: an INVITE answered (100, 180, 200 with our SDP) and confirmed by
its ACK, the handler run on the call's SipChannel, re-INVITEs, CANCEL before the answer, BYE, and the end of a call
from either side.

Calls are dialogs keyed by Call-ID and the caller's From tag: an INVITE without To tag matching a call's first
INVITE (same CSeq) on another branch is a merged request (RFC 3261 8.2.2.2, 482 Loop Detected); with a new CSeq it
is that dialog's re-INVITE (an RFC 2543 peer, as sofia-sip and chan_sip take it). An INVITE without SDP (delayed
offer, or a re-INVITE without one) gets our offer in the 200 and its answer is read from the ACK.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ivr.channel.base import CallerHungUp, CallInfo
from ivr.channel.sip import SipChannel
from ivr.logs import mask_number
from ivr.rtp.session import NoFreePortError
from ivr.sip.call_media import media_params, open_media, reanswer
from ivr.sip.dialog import Call, contact, dialog_key, in_dialog_request, new_tag
from ivr.sip.endpoint import Endpoint
from ivr.sip.headers import RequestSummary, uri_user
from ivr.sip.message import Request
from ivr.sip.refer import Referrals
from ivr.sip.screen import ALLOW
from ivr.sip.sdp import SdpError, SdpNegotiationError, accept_answer, parse_sdp, warning
from ivr.sip.transaction import transaction_key

__all__ = ["Dialogs"]

logger = logging.getLogger(__name__)


class Dialogs:
    """The calls of one endpoint, by dialog key, and the REFERs in progress on them."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.calls: dict[tuple[str, str], Call] = {}
        self.referrals = Referrals(self, lambda req, addr: endpoint.send(endpoint.response(req, 200, addr), addr))

    def dialog(self, summary: RequestSummary) -> Call | None:
        """The call an in-dialog request (To tag set) belongs to, if it is still going."""
        call = self.calls.get(dialog_key(summary))
        if call is None or summary.to.tag != call.local_tag or call.state == "ended":
            return None
        return call

    def contact(self, call: Call) -> str:
        return contact(call, self.endpoint.port)

    # ----- a new INVITE -----------------------------------------------------------------------------------
    def on_repeated_invite(self, req: Request, summary: RequestSummary, addr: tuple[str, int], existing: Call) -> None:
        """An INVITE without To tag in a dialog we have: a retransmission, a merged request or a re-INVITE."""
        ep = self.endpoint
        first = summary.cseq.number == existing.summary.cseq.number
        if first and transaction_key(summary) == existing.invite_tx.key:  # after its transaction ended
            ep.count("retransmissions_absorbed")
            if existing.invite_tx.last_response is not None:
                ep.send(existing.invite_tx.last_response, addr)
        elif first and existing.invite_tx.state != "terminated":
            ep.reject_invite(req, summary, addr, 482, "merged request (same From tag, Call-ID and CSeq)", kind="merged")
        else:  # another CSeq (or the first one's, answered and done): this dialog's re-INVITE
            self.on_reinvite(req, summary, addr, existing)

    def start(self, req: Request, summary: RequestSummary, addr: tuple[str, int]) -> None:
        """Take a new call: open its media and answer it (after `ring_seconds` of 180 Ringing)."""
        ep, config = self.endpoint, self.endpoint.config
        busy = [("Retry-After", str(config.retry_after))]
        local_host = ep.local_ip(addr)
        try:
            media = open_media(req.body, local_host, config.codecs, ep.clock, ep.ports, config.rtp_timeout)
        except SdpNegotiationError as exc:
            ep.reject_invite(req, summary, addr, 488, str(exc), [("Warning", warning(exc))], "not_acceptable")
            return
        except SdpError as exc:
            ep.reject_invite(req, summary, addr, 400, f"bad SDP: {exc}", kind="bad_sdp")
            return
        except NoFreePortError as exc:
            ep.reject_invite(req, summary, addr, 503, str(exc), busy, "no_rtp_port")
            return
        neg = media.negotiated
        tx = ep.new_tx(summary, addr)
        call = Call(call_id=summary.call_id, peer=addr, invite=req, summary=summary, local_tag=new_tag(),
                    local_host=local_host, invite_tx=tx, session=media.session, negotiated=neg,
                    answer_sdp=media.sdp, session_id=media.session_id, remote_cseq=summary.cseq.number,
                    awaiting_answer=media.offered)
        self.calls[call.key] = call
        media.session.on_rx_timeout = lambda: self.end_call(call, "no RTP from the caller (timeout)", send_bye=True)
        ep.count("calls")
        logger.info("call %s from %s to %s (%s)", call.call_id, mask_number(summary.from_.uri), mask_number(req.uri),
                    "delayed offer" if media.offered else f"{neg.codec}, DTMF "
                    + ("RFC 4733" if neg.dtmf_payload_type is not None else "in-band"))
        tx.respond(100, ep.response(req, 100, addr))
        ep.spawn(self._setup(call))

    async def _setup(self, call: Call) -> None:
        await call.session.start()
        if call.state != "early":
            return
        ring_seconds = self.endpoint.config.ring_seconds
        if ring_seconds > 0:
            call.invite_tx.respond(180, self.endpoint.response(call.invite, 180, call.peer, to_tag=call.local_tag,
                                                               extra=[("Contact", self.contact(call))]))
            call.ring_handle = asyncio.get_running_loop().call_later(ring_seconds, self._answer, call)
        else:
            self._answer(call)

    def _answer(self, call: Call) -> None:
        call.ring_handle = None
        if call.state != "early":
            return
        call.state = "answered"
        call.pending_tx = call.invite_tx
        call.invite_tx.on_ack = lambda: self._confirmed(call)
        call.invite_tx.on_timeout = lambda: self.end_call(call, "no ACK for 200 (timer H)", send_bye=True)
        call.invite_tx.respond(200, self.endpoint.response(
            call.invite, 200, call.peer, to_tag=call.local_tag, body=call.answer_sdp,
            extra=[("Contact", self.contact(call)), ("Allow", ALLOW), ("Supported", "")]))

    def _confirmed(self, call: Call) -> None:
        if call.state != "answered":
            return
        call.state = "confirmed"
        info = CallInfo(call_id=call.call_id, caller=uri_user(call.summary.from_.uri), called=uri_user(call.invite.uri),
                        extra={"codec": call.negotiated.codec, "remote": f"{call.peer[0]}:{call.peer[1]}"})
        channel = SipChannel(info, call.session, lambda: self._hangup(call),
                             inband_dtmf=call.negotiated.dtmf_payload_type is None,
                             refer_cb=lambda target, timeout_s: self.referrals.refer(call, target, timeout_s))
        call.channel = channel
        call.task = self.endpoint.spawn(self._run_handler(call, channel))

    async def _run_handler(self, call: Call, channel: SipChannel) -> None:
        try:
            await self.endpoint.handler(channel)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not isinstance(exc, CallerHungUp):  # a bug every call hits: a traceback every 10 s, not each
                self.endpoint.rate_log(("handler", type(exc).__name__), logging.ERROR, "call handler failed for %s",
                                       call.call_id, exc_info=True)
        finally:
            if call.state != "ended":
                self.end_call(call, "handler finished", send_bye=True)

    async def _hangup(self, call: Call) -> None:
        self.end_call(call, "IVR hung up", send_bye=True)

    # ----- requests in a dialog ---------------------------------------------------------------------------
    def on_reinvite(self, req: Request, summary: RequestSummary, addr: tuple[str, int], call: Call | None) -> None:
        ep = self.endpoint
        tx = ep.new_tx(summary, addr)
        if call is None:
            tx.respond(481, ep.response(req, 481, addr))
            return
        if call.pending_tx is not None or call.state == "early":
            tx.respond(491, ep.response(req, 491, addr))
            return
        if summary.cseq.number <= call.remote_cseq:
            tx.respond(500, ep.response(req, 500, addr, extra=[("Retry-After", "1")]))
            return
        call.remote_cseq = summary.cseq.number
        call.reoffered = not req.body  # our current description goes in the 200 as an offer
        if req.body:
            try:
                body, neg, call.sdp_version = reanswer(parse_sdp(req.body), call.local_host, call.session.local_port,
                                                       call.session_id, call.sdp_version, call.answer_sdp,
                                                       ep.config.codecs)
            except SdpError as exc:
                tx.respond(488, ep.response(req, 488, addr, extra=[("Warning", warning(exc))]))
                return
            call.answer_sdp = body
            call.negotiated = neg
            call.session.update(media_params(neg))
            logger.info("call %s re-INVITE: %s %s", call.call_id, neg.codec, neg.direction)
        call.pending_tx = tx
        tx.on_timeout = lambda: self.end_call(call, "no ACK for re-INVITE 200 (timer H)", send_bye=True)
        tx.respond(200, ep.response(req, 200, addr, to_tag=call.local_tag, body=call.answer_sdp,
                                    extra=[("Contact", self.contact(call)), ("Allow", ALLOW)]))

    def on_ack(self, req: Request, summary: RequestSummary) -> None:
        tx = self.endpoint.transactions.find(summary)
        if tx is not None and tx.final_status is not None and tx.final_status >= 300:
            tx.ack()
            return
        call = self.dialog(summary)
        if call is None or call.pending_tx is None:
            return
        if call.awaiting_answer or (call.reoffered and req.body):  # (an empty ACK to a re-offer keeps the media)
            try:
                neg = accept_answer(parse_sdp(req.body), self.endpoint.config.codecs, call.local_host)
            except SdpError as exc:
                call.pending_tx.terminate()
                self.end_call(call, f"no usable SDP answer in the ACK ({exc})", send_bye=True)
                return
            call.awaiting_answer = False
            call.negotiated = neg
            call.session.update(media_params(neg))
        call.reoffered = False
        pending, call.pending_tx = call.pending_tx, None
        pending.ack()

    def on_cancel(self, req: Request, summary: RequestSummary, addr: tuple[str, int]) -> None:
        ep = self.endpoint
        tx = ep.new_tx(summary, addr)
        invite_tx = ep.transactions.find(summary, "INVITE")
        call = self.calls.get(dialog_key(summary))
        if invite_tx is None:
            tx.respond(481, ep.response(req, 481, addr))
            return
        tag = call.local_tag if call is not None else None
        tx.respond(200, ep.response(req, 200, addr, to_tag=tag))
        if invite_tx.final_status is None and call is not None and call.state == "early":
            invite_tx.respond(487, ep.response(call.invite, 487, addr, to_tag=call.local_tag))
            self.end_call(call, "caller cancelled", send_bye=False)

    def on_bye(self, req: Request, summary: RequestSummary, addr: tuple[str, int]) -> None:
        ep = self.endpoint
        tx = ep.new_tx(summary, addr)
        call = self.dialog(summary)
        if call is None:
            tx.respond(481, ep.response(req, 481, addr))
            return
        tx.respond(200, ep.response(req, 200, addr))
        self.end_call(call, "caller hung up", send_bye=False)

    def send_request(self, call: Call, method: str, extra: list[tuple[str, str]] | None = None,
                     on_status: Callable[[int | None], None] | None = None) -> None:
        """Send a request of ours in the call's dialog (BYE, REFER); `on_status` hears its final status."""
        ep = self.endpoint
        branch, req = in_dialog_request(call, method, ep.port, ep.config.user_agent, extra)
        peer = call.peer

        def done(status: int | None) -> None:
            if status is None:
                logger.info("%s for %s got no answer", method, call.call_id)
            if on_status is not None:
                on_status(status)

        ep.transactions.new_client(branch, bytes(req), lambda d: ep.send(d, peer), done)

    # ----- ending -----------------------------------------------------------------------------------------
    def end_call(self, call: Call, reason: str, send_bye: bool) -> None:
        if call.state == "ended":
            return
        answered = call.state in ("answered", "confirmed")
        call.state = "ended"
        call.end_reason = reason
        self.referrals.call_ended(call, reason)
        if call.ring_handle is not None:
            call.ring_handle.cancel()
            call.ring_handle = None
        if call.channel is not None:
            call.channel.mark_hung_up()
        if send_bye and answered:
            self.send_request(call, "BYE")
        call.session.close()
        for tx in (call.invite_tx, call.pending_tx):
            if tx is not None and tx.final_status is not None and tx.final_status < 300:
                tx.terminate()
        call.pending_tx = None
        self.calls.pop(call.key, None)
        ended = self.endpoint.ended_calls
        ended.append((call.call_id, reason))
        del ended[:-1000]
        stats = call.session.stats
        logger.info("call %s ended: %s (rtp sent %d, send errors %d, received %d, dtmf %d)", call.call_id, reason,
                    stats.sent, stats.send_errors, stats.received, stats.dtmf_events)
