"""Blind transfer by REFER (RFC 3515) of an answered inbound call, for PBXs that prefer it to a media bridge.

The UAS sends an in-dialog REFER (Refer-To the target, Referred-By us); a 202 (or 200) means the caller's phone
accepted it, and its NOTIFYs (Event: refer, body message/sipfrag) report how the call to the target goes. The first
final status in a sipfrag decides: 2xx is a transfer done (the UAS then BYEs the caller leg), anything else is a
failure with the reason. A REFER refused, unanswered, or without a final NOTIFY in time is a failure too.
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Protocol

from ivr.channel.base import TransferResult
from ivr.logs import mask_number
from ivr.sip.dialog import Call
from ivr.sip.headers import RequestSummary, validate_request
from ivr.sip.message import Request, SipParseError, parse_message

__all__ = ["Referral", "Referrals", "refer_headers", "sipfrag_status"]

logger = logging.getLogger(__name__)

_SIPFRAG_RE = re.compile(rb"\s*SIP/2\.0 (\d{3})")


def sipfrag_status(body: bytes) -> int | None:
    """The status code of a message/sipfrag status line ("SIP/2.0 200 OK"), None when it has none."""
    m = _SIPFRAG_RE.match(body)
    return int(m.group(1)) if m else None


def refer_headers(target: str, referred_by: str) -> list[tuple[str, str]]:
    return [("Refer-To", f"<{target}>"), ("Referred-By", referred_by), ("Event", "refer")]


class Referral:
    """One REFER in progress: fed the REFER's final status and the NOTIFYs, it resolves to a TransferResult."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.accepted = False  # the REFER was answered 2xx, or a NOTIFY about it came
        self.done: asyncio.Future[TransferResult] = asyncio.get_running_loop().create_future()

    def _finish(self, ok: bool, reason: str = "") -> None:
        if not self.done.done():
            self.done.set_result(TransferResult(ok=ok, target=self.target, reason=reason, accepted=self.accepted))

    def on_response(self, status: int | None) -> None:
        """The final response to the REFER (None: none came before timer F)."""
        if status is not None and 200 <= status < 300:
            self.accepted = True
        elif status is None:
            self._finish(False, "no answer to REFER")
        elif status >= 300:
            self._finish(False, f"REFER refused with {status}")

    def on_notify(self, notify: Request) -> None:
        self.accepted = True
        status = sipfrag_status(notify.body)
        if status is not None and status >= 200:
            self._finish(status < 300, "" if status < 300 else f"the transfer target answered {status}")

    def on_call_ended(self, reason: str) -> None:
        self._finish(False, f"the call ended during the transfer ({reason})")

    async def wait(self, timeout_s: float) -> TransferResult:
        try:
            return await asyncio.wait_for(asyncio.shield(self.done), timeout_s)
        except TimeoutError:
            return TransferResult(ok=False, target=self.target,
                                  reason=f"no NOTIFY with a final status within {timeout_s:g} s", accepted=self.accepted)


class InDialog(Protocol):
    """What a REFER needs of the calls it is sent in."""

    def dialog(self, summary: RequestSummary) -> Call | None: ...

    def contact(self, call: Call) -> str: ...

    def send_request(self, call: Call, method: str, extra: list[tuple[str, str]] | None = None,
                     on_status: Callable[[int | None], None] | None = None) -> None: ...

    def end_call(self, call: Call, reason: str, send_bye: bool) -> None: ...


class Referrals:
    """The REFERs in progress, one at most per dialog; `answer(notify, addr)` answers a NOTIFY about one 200."""

    def __init__(self, dialogs: InDialog, answer: Callable[[Request, tuple[str, int]], None]) -> None:
        self.dialogs = dialogs
        self.answer = answer
        self.in_progress: dict[tuple[str, str], Referral] = {}  # dialog key -> the REFER in progress on it

    async def refer(self, call: Call, target: str, timeout_s: float) -> TransferResult:
        """Send the caller to `target` by REFER; a transfer done ends our leg with BYE."""
        referral = self.in_progress[call.key] = Referral(target)
        try:
            self.dialogs.send_request(call, "REFER", refer_headers(target, self.dialogs.contact(call)),
                                      referral.on_response)
            result = await referral.wait(timeout_s)
        finally:
            self.in_progress.pop(call.key, None)
        logger.info("call %s REFER to %s: %s", call.call_id, mask_number(target), result.reason or "transferred")
        if result.ok:
            self.dialogs.end_call(call, "transferred by REFER", send_bye=True)
        return result

    def on_notify(self, data: bytes, addr: tuple[str, int]) -> bool:
        """A NOTIFY about a REFER of ours: answer 200 and pass it on. False: not one (screen() answers it)."""
        try:
            req = parse_message(data)
            if not isinstance(req, Request):
                return False
            call = self.dialogs.dialog(validate_request(req, frozenset({"NOTIFY"})))
        except SipParseError:
            return False
        referral = self.in_progress.get(call.key) if call is not None else None
        if referral is None:
            return False
        self.answer(req, addr)
        referral.on_notify(req)
        return True

    def call_ended(self, call: Call, reason: str) -> None:
        referral = self.in_progress.get(call.key)
        if referral is not None:
            referral.on_call_ended(reason)
