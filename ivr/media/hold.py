"""What the queue needs from outbound calls and the media bridge, and the hold audio a waiting caller hears.

`PlaceCall` and `Bridge` are the shapes of `place_call(uri, proxy)` (an outbound SIP call whose answered leg is a
Channel) and `bridge(caller, operator)` (relay media until one side hangs up); the desk and the callback dialler
take them injected, so either can be replaced (e.g. a stand-in in tests). `ring` is how both hold a caller while
an operator's phone rings.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from asr.audio import FRAME_BYTES, SAMPLE_RATE
from ivr.channel.base import CallerHungUp, Channel
from ivr.media.callio import CallIO

__all__ = ["Outbound", "PlaceCall", "Bridge", "HoldAudio", "HungUpRinging", "hold_music", "ring"]


class Outbound(Protocol):
    """The result of an outbound call attempt: outcome answered | busy | no_answer | failed."""

    @property
    def outcome(self) -> str: ...

    @property
    def status(self) -> int | None: ...

    @property
    def channel(self) -> Channel | None: ...


PlaceCall = Callable[[str, tuple[str, int]], Awaitable[Outbound]]
Bridge = Callable[[Channel, Channel], Awaitable[object]]

HOLD_CHUNK_FRAMES = 5  # 100 ms: how often the hold loop looks at keys and queue events
# a slow pentatonic phrase (C D E G A), one note a beat; 0 is a rest
_MELODY = (261.63, 329.63, 392.0, 440.0, 392.0, 329.63, 293.66, 0.0,
           293.66, 392.0, 440.0, 523.25, 440.0, 392.0, 329.63, 0.0)
_BEAT_S = 0.5


@lru_cache(maxsize=1)
def hold_music(dbfs: float = -26.0) -> bytes:
    """A quiet generated melody (8 kHz PCM16, 8 s, loops seamlessly): soft notes with a fundamental and one
    weaker octave, each with a raised-cosine swell, so the line never sounds dead."""
    n = int(_BEAT_S * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    envelope = np.sin(np.pi * t / _BEAT_S) ** 2
    amp = 32768 * 10 ** (dbfs / 20)
    notes = [np.zeros(n) if hz == 0.0 else
             amp * envelope * (0.8 * np.sin(2 * np.pi * hz * t) + 0.2 * np.sin(4 * np.pi * hz * t))
             for hz in _MELODY]
    return np.concatenate(notes).astype("<i2").tobytes()


class HoldAudio:
    """Plays the hold music in 100 ms steps, carrying on where the last step stopped."""

    def __init__(self, audio: bytes | None = None) -> None:
        self.audio = audio or hold_music()
        self._pos = 0

    async def step(self, io: CallIO) -> None:
        """Play the next 100 ms (keys are kept for `io.next_key()`), then let other tasks run."""
        size = HOLD_CHUNK_FRAMES * FRAME_BYTES
        chunk = self.audio[self._pos:self._pos + size]
        self._pos = (self._pos + size) % len(self.audio)
        await io.play(chunk, interruptible=False)
        await asyncio.sleep(0)  # a channel in virtual time never waits: give the queue's ticker its turn

    async def until_done(self, io: CallIO, task: asyncio.Future[Any]) -> None:
        """Hold the caller until `task` is done. CallerHungUp propagates and leaves `task` running."""
        while not task.done():
            await self.step(io)


class HungUpRinging(CallerHungUp):
    """The caller hung up while the operator's phone rang; `answered`: the operator had picked up (and was hung up)."""

    def __init__(self, call_id: str, answered: bool) -> None:
        super().__init__(call_id)
        self.answered = answered


async def ring(io: CallIO, calling: Awaitable[Outbound], hold: bytes | None = None,
               prompt: bytes | None = None) -> Outbound:
    """Play `prompt` (if any), then hold music, to the caller until the operator's call (`calling`) is answered or
    fails. A caller who hangs up meanwhile raises HungUpRinging once the operator's call is settled; cancelling
    `ring` cancels the operator's call (an answered one is hung up)."""
    ringing = asyncio.ensure_future(calling)
    try:
        if prompt is not None:
            await io.play(prompt, interruptible=False)  # the operator's phone rings meanwhile
        await HoldAudio(hold).until_done(io, ringing)
    except CallerHungUp as exc:
        result = await ringing
        if result.channel is not None:
            await result.channel.hangup()
        raise HungUpRinging(str(exc), answered=result.channel is not None) from exc
    except asyncio.CancelledError:  # the server stopping: the operator's phone stops ringing, or is hung up
        ringing.add_done_callback(_hang_up_answered)
        ringing.cancel()
        raise
    return ringing.result()


def _hang_up_answered(ringing: asyncio.Future[Outbound]) -> None:
    if ringing.cancelled() or ringing.exception() is not None:
        return
    channel = ringing.result().channel
    if channel is not None:
        _hanging_up.add(task := asyncio.ensure_future(channel.hangup()))
        task.add_done_callback(_hanging_up.discard)


_hanging_up: set[asyncio.Future[None]] = set()
