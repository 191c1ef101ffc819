"""The Channel interface between the flow runner and a caller's audio.

A channel moves audio in lock-step, one 20 ms frame each way per `exchange()` call: the runner hands the
frame to play (or None for silence) and gets back the 20 ms the caller sent, with any out-of-band key presses.
Real channels (SIP/RTP, sound card) pace `exchange()` by their clock; the file-driven channel runs in virtual
time, as fast as the CPU allows, so tests are deterministic. Time-outs are counted in frames by the caller of
`exchange()`, never read from the wall clock.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field

from asr.audio import FRAME_BYTES, FRAME_MS
from ivr.errors import IvrError

__all__ = ["Inbound", "CallerHungUp", "TransferResult", "Channel", "FRAME_BYTES", "FRAME_MS"]


@dataclass(frozen=True)
class Inbound:
    """What the caller sent during one 20 ms frame."""

    audio: bytes  # exactly FRAME_BYTES of 8 kHz PCM16 (silence when nothing arrived)
    t_ms: int  # channel time at the start of this frame, from the answer of the call
    digits: tuple[str, ...] = ()  # out-of-band key presses that started in this frame: 0-9 * # A-D


class CallerHungUp(IvrError):
    """The caller has gone: raised by `exchange()` once the far end hung up."""


@dataclass(frozen=True)
class TransferResult:
    ok: bool
    target: str
    reason: str = ""
    accepted: bool = False  # a REFER the caller's phone took (so a failure was the target's, not the phone's)


@dataclass
class CallInfo:
    call_id: str
    caller: str  # caller's number as received (mask it in logs with ivr.logs.mask_number)
    called: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class Channel(abc.ABC):
    """One call's media and control, as seen by the flow runner."""

    info: CallInfo
    #: True when key presses arrive only as tones inside the audio (no RFC 4733 / script digits), so the
    #: media layer must run its in-band DTMF detector.
    inband_dtmf: bool = False

    @abc.abstractmethod
    async def exchange(self, out: bytes | None) -> Inbound:
        """Send one frame (FRAME_BYTES, or None for silence) and return the caller's next frame.

        Raises CallerHungUp when the caller has hung up.
        """

    @abc.abstractmethod
    async def hangup(self) -> None:
        """End the call from our side (idempotent)."""

    async def transfer(self, target: str) -> TransferResult:
        """Hand the caller to a person or queue; channels that cannot do it say so."""
        return TransferResult(ok=False, target=target, reason=f"{type(self).__name__} cannot transfer calls")

    async def refer(self, target_uri: str, *, timeout_s: float = 32.0) -> TransferResult:
        """Blind transfer by REFER to `target_uri`; channels that cannot do it say so."""
        return TransferResult(ok=False, target=target_uri, reason=f"{type(self).__name__} cannot refer calls")

    def send_digit(self, digit: str) -> bool:
        """Send a key to the far end out of band; False when this channel cannot (the default)."""
        return False
