"""The Channel of a SIP/RTP call: lock-step 20 ms exchange over the call's RTP session.

`exchange(out)` queues `out` (or silence) for the next paced RTP packet and returns the caller's next 20 ms of
jitter-buffered 8 kHz PCM16 with the RFC 4733 keys that started in it. When the call did not negotiate
telephone-event, `inband_dtmf` is True and keys arrive only as tones in the audio.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from asr.audio import FRAME_BYTES, FRAME_MS
from ivr.channel.base import CallerHungUp, CallInfo, Channel, Inbound, TransferResult
from ivr.rtp.session import RtpSession

__all__ = ["SipChannel", "TransferHook", "ReferHook"]

logger = logging.getLogger(__name__)

TransferHook = Callable[[str], Awaitable[TransferResult]]
ReferHook = Callable[[str, float], Awaitable[TransferResult]]  # (target URI, NOTIFY time-out in seconds)


class SipChannel(Channel):
    """One answered SIP call as the flow runner sees it.

    `hangup_cb` is the UAS's way to end the call (sends BYE); `mark_hung_up()` is called by the UAS when the
    caller hangs up, which wakes a pending `exchange()` with CallerHungUp. `transfer_to`, when set (by the
    service that runs the call), is what `transfer(target)` does, e.g. queue the caller for a person.
    """

    transfer_to: TransferHook | None = None

    def __init__(self, info: CallInfo, session: RtpSession, hangup_cb: Callable[[], Awaitable[None]],
                 inband_dtmf: bool, refer_cb: ReferHook | None = None) -> None:
        self.info = info
        self._refer_cb = refer_cb
        self.session = session
        self.inband_dtmf = inband_dtmf
        self._hangup_cb = hangup_cb
        self._waiter: asyncio.Future[None] | None = None
        self._gone = False
        self._hung_up_by_us = False
        self._start_tick = session.tick_count
        session.on_inbound = self._wake
        session.inbound.clear()  # audio from before the ACK is not part of the conversation

    @property
    def ended(self) -> bool:
        return self._gone

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def mark_hung_up(self) -> None:
        """The call has ended (caller's BYE, CANCEL, time-out): pending and later exchanges raise CallerHungUp."""
        self._gone = True
        self._wake()

    async def exchange(self, out: bytes | None) -> Inbound:
        if self._gone:
            raise CallerHungUp(self.info.call_id)
        if out is not None and len(out) != FRAME_BYTES:
            raise ValueError(f"a frame is {FRAME_BYTES} bytes of PCM16, got {len(out)}")
        self.session.queue_frame(out)
        while not self.session.inbound:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
            if self._gone:
                raise CallerHungUp(self.info.call_id)
        frame = self.session.inbound.popleft()
        return Inbound(audio=frame.audio, t_ms=(frame.tick - self._start_tick - 1) * FRAME_MS, digits=frame.digits)

    async def transfer(self, target: str) -> TransferResult:
        if self.transfer_to is None:
            return await super().transfer(target)
        return await self.transfer_to(target)

    async def refer(self, target_uri: str, *, timeout_s: float = 32.0) -> TransferResult:
        """Blind transfer by REFER: ok once a NOTIFY reports the target answered (the caller leg is then ended
        with BYE); ok=False with the reason on a refusal, a failed target or no final NOTIFY within `timeout_s`."""
        if self._refer_cb is None or self._gone:
            return TransferResult(ok=False, target=target_uri,
                                  reason="the call has ended" if self._gone else "this call cannot be referred")
        return await self._refer_cb(target_uri, timeout_s)

    def send_digit(self, digit: str) -> bool:
        """Send a key to the far end as RFC 4733 events; False when the call has no telephone-event."""
        return self.session.send_digit(digit)

    async def hangup(self) -> None:
        if self._gone:
            return
        self._gone = True
        self._hung_up_by_us = True
        self._wake()
        await self._hangup_cb()
