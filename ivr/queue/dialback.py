"""Calling a citizen back when their booked callback reaches a free operator.

The citizen is called through the trunk and told who is calling and why ("您好，这里是12345市民服务热线，您之前
预约了回拨……接通人工请按1"); on 1 the operator is rung (the citizen hears 正在为您接通, then hold music) and the
two legs are bridged.
The outcome goes to the callback store: answered only when the citizen reached the operator.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from asr.vad import VadConfig
from ivr.channel.base import CallerHungUp
from ivr.logs import mask_number
from ivr.media.callio import CallIO, DigitDetector, HeardKind
from ivr.media.hold import Bridge, HungUpRinging, PlaceCall, ring
from ivr.queue.callbacks import Callback
from ivr.queue.model import Connect, Priority
from ivr.queue.ticker import DialbackResult
from ivr.sip.uac import proxy_of
from prompts.library import PromptLibrary

__all__ = ["CallbackDialler"]

log = logging.getLogger(__name__)


class CallbackDialler:
    """A `Dialback` for QueueRunner: citizens are called through `trunk` (None: the operator's host).
    `inband` makes a DTMF detector for citizens' lines without RFC 4733."""

    def __init__(self, prompts: PromptLibrary, *, place_call: PlaceCall, bridge: Bridge, trunk: tuple[str, int] | None,
                 inband: Callable[[], DigitDetector] | None = None, answer_ms: int = 6_000, asks: int = 2,
                 hold: bytes | None = None) -> None:
        self.prompts, self.place_call, self.bridge, self.trunk = prompts, place_call, bridge, trunk
        self.inband, self.answer_ms, self.asks, self.hold = inband, answer_ms, asks, hold

    async def __call__(self, event: Connect, cb: Callback) -> DialbackResult:
        host, port = trunk = self.trunk or proxy_of(event.agent_uri, None)  # no trunk: the operator's PBX
        citizen = await self.place_call(f"sip:{cb.number}@{host}:{port}", trunk)
        if citizen.outcome != "answered" or citizen.channel is None:
            log.info("callback %d to %s: %s (%s)", cb.id, mask_number(cb.number), citizen.outcome, citizen.status)
            return DialbackResult(citizen.outcome)
        channel = citizen.channel
        io = CallIO(channel, None, self.inband() if (self.inband and channel.inband_dtmf) else None)
        style = "elderly" if cb.priority == Priority.ELDERLY else "standard"
        try:
            if not await self._confirmed(io, style):
                await io.play(self.prompts.get("goodbye", style), interruptible=False)
                await channel.hangup()
                return DialbackResult("no_response")
            operator = await ring(io, self.place_call(event.agent_uri, proxy_of(event.agent_uri, self.trunk)),
                                  self.hold, self.prompts.get("queue_connecting", style))
            if operator.outcome != "answered" or operator.channel is None:
                log.warning("callback %d: operator %s did not answer (%s)", cb.id, event.agent_id, operator.outcome)
                await io.play(self.prompts.get("callback_sorry", style), interruptible=False)
                await channel.hangup()
                return DialbackResult("operator_missed", operator="missed")
            log.info("callback %d: citizen put through to %s", cb.id, event.agent_id)
            await self.bridge(channel, operator.channel)
            return DialbackResult("answered", operator="talked")
        except CallerHungUp as exc:
            log.info("callback %d: the citizen hung up before reaching an operator", cb.id)
            answered = isinstance(exc, HungUpRinging) and exc.answered
            return DialbackResult("no_response", operator="talked" if answered else "")

    async def _confirmed(self, io: CallIO, style: str) -> bool:
        """Say who is calling and why until the citizen presses 1 (at most `asks` times)."""
        for _ in range(self.asks):
            await io.play(self.prompts.get("callback_intro", style), interruptible=True)
            heard = await io.listen(VadConfig(no_input_ms=self.answer_ms), max_digits=1, speech=False)
            if heard.kind == HeardKind.DTMF and heard.digits == "1":
                return True
        return False
