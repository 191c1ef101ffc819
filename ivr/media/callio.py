"""The media layer between the flow runner and a Channel: play with barge-in, listen for keys or speech, record.

Audio goes through the stages of one call in 20 ms steps: channel -> (in-band DTMF) -> VAD endpointer ->
streaming recogniser. Key presses made during a prompt are kept (type-ahead) for the next `listen()`; speech that
barges in on a prompt keeps its endpointer and decoder, so the caller's first words are not lost.

A question the caller may answer by voice is a `speech_step()`: live recognition admits it or not (see
`asr.load.Admission`); a step it does not take is served by keys only, prompts ignore speech, and what is recorded
is transcribed after the call. How long callers wait after they stop speaking until the next prompt starts goes to
`ReplyTimes`.
"""
from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from asr.audio import FRAME_MS, frames
from asr.engine import Engine
from asr.load import Admission
from asr.results import Transcript
from asr.stream import AsyncDecoder, DecodeScheduler
from asr.vad import BargeIn, Endpointer, NoInput, SpeechAudio, SpeechEnd, SpeechStart, VadConfig
from ivr.channel.base import CallerHungUp, Channel, Inbound
from ivr.media.recording import RecordingWriter
from ivr.media.replies import ReplyTimes

__all__ = ["Heard", "HeardKind", "RecordResult", "RecordEnd", "CallIO", "DigitDetector"]

log = logging.getLogger(__name__)


class DigitDetector(Protocol):
    """An in-band DTMF detector: frames in, digits (each once, when it is recognised) out."""

    def process(self, frame: bytes) -> list[str]: ...


class HeardKind(enum.StrEnum):
    DTMF = "dtmf"
    SPEECH = "speech"
    NO_INPUT = "no_input"


class RecordEnd(enum.StrEnum):
    """Why a recording ended."""

    SILENCE = "silence"
    MAX_LENGTH = "max_length"
    KEY = "key"  # a stop key
    NO_INPUT = "no_input"  # nothing said before the no-input time
    HANGUP = "hangup"
    WRITE_FAILED = "write_failed"  # the writer's error says why (a full disk)


@dataclass(frozen=True)
class Heard:
    """What `listen()` got: keys, speech, or nothing."""

    kind: HeardKind
    digits: str = ""
    transcript: Transcript | None = None
    audio: bytes = b""
    t_ms: int = 0  # when the input ended
    terminated: bool = False  # the digits ended with the terminator key


@dataclass(frozen=True)
class RecordResult:
    audio_ms: int
    reason: RecordEnd
    transcript: Transcript | None
    sha256: str


class CallIO:
    """Play, listen and record over one channel. A server passes the node's decoding `scheduler`, its
    `admission` to live recognition and its `replies` times; without them every step may use speech."""

    def __init__(self, channel: Channel, engine: Engine | None, inband: DigitDetector | None = None, *,
                 scheduler: DecodeScheduler | None = None, admission: Admission | None = None,
                 replies: ReplyTimes | None = None) -> None:
        self.channel = channel
        self.engine = engine
        self.inband = inband if channel.inband_dtmf else None
        self.scheduler, self.admission, self.replies = scheduler, admission, replies
        self.t_ms = 0
        self._typeahead: list[str] = []
        self._endpointer: Endpointer | None = None  # carried over from a barged-in prompt
        self._decoder: AsyncDecoder | None = None
        self._utterance: list[bytes] = []
        self._speech = True  # whether the current step may be answered by voice
        self._spoke_at: float | None = None  # when the caller last stopped speaking, until the next prompt

    @contextmanager
    def speech_step(self, priority: bool = False) -> Iterator[bool]:
        """A step the caller may answer by voice; yields False when live recognition does not take it (then keys
        only: prompts ignore speech, `listen` waits for keys and `record` transcribes nothing live). Without a
        recogniser or admission control every step is taken."""
        reservation = None
        if self.engine is not None and self.admission is not None:
            reservation = self.admission.admit(priority)
            self._speech = reservation is not None
            if reservation is None:
                log.info("call %s: live recognition is full; this step is by keys", self.channel.info.call_id)
        try:
            yield self._speech
        finally:
            self._speech = True
            if reservation is not None:
                reservation.release()

    async def _step(self, out: bytes | None) -> Inbound:
        inbound = await self.channel.exchange(out)
        self.t_ms = inbound.t_ms + FRAME_MS
        if self.inband is not None:
            found = self.inband.process(inbound.audio)
            if found:
                inbound = Inbound(inbound.audio, inbound.t_ms, inbound.digits + tuple(found))
        return inbound

    def next_key(self) -> str | None:
        """The first key the caller typed ahead (during a prompt), without taking it."""
        return self._typeahead[0] if self._typeahead else None

    def take_key(self) -> str | None:
        """Take the first typed-ahead key."""
        return self._typeahead.pop(0) if self._typeahead else None

    async def silence(self, ms: int) -> None:
        for _ in range(ms // FRAME_MS):
            inbound = await self._step(None)
            self._typeahead += inbound.digits

    async def play(self, pcm: bytes, *, interruptible: bool = True,
                   vad: VadConfig | None = None) -> HeardKind | None:
        """Play a prompt. Returns None when it played to the end, "dtmf" or "speech" when the caller interrupted.

        Keys pressed during a non-interruptible prompt are kept for the next `listen()`. Like keys, speech that
        barged in on one prompt carries over: the next interruptible prompt is skipped and `listen()` goes on
        with the same utterance.
        """
        if interruptible and self._typeahead:
            return HeardKind.DTMF
        if interruptible and self._endpointer is not None:
            return HeardKind.SPEECH  # the caller is still speaking over the previous prompt: listen on
        endpointer = Endpointer(vad or VadConfig()) if interruptible and self._speech else None
        for frame in frames(pcm):
            if self._spoke_at is not None:
                if self.replies is not None:
                    self.replies.observe(time.monotonic() - self._spoke_at)
                self._spoke_at = None
            inbound = await self._step(frame)
            if inbound.digits:
                self._typeahead += inbound.digits
                if interruptible:
                    return HeardKind.DTMF
            if endpointer is not None:
                events = endpointer.process(inbound.audio)
                self._feed_utterance(events)
                if any(isinstance(e, BargeIn) for e in events):
                    self._endpointer = endpointer
                    log.debug("call %s: caller barged in at %d ms", self.channel.info.call_id, self.t_ms)
                    return HeardKind.SPEECH
        await self._drop_utterance()
        return None

    def _feed_utterance(self, events: list) -> None:
        """Start/feed the decoder from endpointer events (used while playing and while listening)."""
        for ev in events:
            if isinstance(ev, SpeechStart):
                self._utterance = [ev.audio]
                if self.engine is not None:
                    self._decoder = AsyncDecoder(self.engine, scheduler=self.scheduler)
                    self._decoder.feed(ev.audio)
            elif isinstance(ev, SpeechAudio):
                self._utterance.append(ev.audio)
                if self._decoder is not None:
                    self._decoder.feed(ev.audio)

    async def _drop_utterance(self) -> None:
        if self._decoder is not None:
            await self._decoder.cancel()
        self._decoder = None
        self._utterance = []
        self._endpointer = None

    async def listen(
        self,
        vad: VadConfig | None = None,
        *,
        max_digits: int = 1,
        terminator: str = "#",
        interdigit_ms: int = 3000,
        speech: bool = True,
    ) -> Heard:
        """Wait for keys or speech (keys only outside a step live recognition took). Keys win over speech;
        time-outs are counted in frames."""
        vad = vad or VadConfig()
        speech = speech and self._speech
        endpointer = self._endpointer or Endpointer(vad)
        self._endpointer = None
        digits: list[str] = []
        since_digit = 0
        waited = 0
        while True:
            if self._typeahead:
                digits += self._typeahead
                self._typeahead = []
                since_digit = 0
            if digits:
                if terminator and terminator in digits:
                    await self._drop_utterance()
                    got = "".join(digits[: digits.index(terminator)])
                    return Heard(HeardKind.DTMF, got, t_ms=self.t_ms, terminated=True)
                if len(digits) >= max_digits or since_digit >= interdigit_ms:
                    await self._drop_utterance()
                    return Heard(HeardKind.DTMF, "".join(digits[:max_digits]), t_ms=self.t_ms)
            inbound = await self._step(None)
            waited += FRAME_MS
            since_digit += FRAME_MS
            if inbound.digits:
                self._typeahead += inbound.digits
                continue
            if not digits and speech:
                events = endpointer.process(inbound.audio)
                self._feed_utterance(events)
                for ev in events:
                    if isinstance(ev, SpeechEnd):
                        return await self._finish_utterance()
                    if isinstance(ev, NoInput):
                        return Heard(HeardKind.NO_INPUT, t_ms=self.t_ms)
            elif not digits and waited >= vad.no_input_ms:
                return Heard(HeardKind.NO_INPUT, t_ms=self.t_ms)

    async def _finish_utterance(self) -> Heard:
        audio = b"".join(self._utterance)
        self._spoke_at = time.monotonic()
        transcript = await self._decoder.finish() if self._decoder is not None else None
        self._decoder = None
        self._utterance = []
        return Heard(HeardKind.SPEECH, transcript=transcript, audio=audio, t_ms=self.t_ms)

    async def record(
        self,
        writer: RecordingWriter,
        *,
        max_ms: int = 120_000,
        end_silence_ms: int = 3_000,
        no_input_ms: int = 8_000,
        stop_keys: str = "#",
        transcribe: bool = True,
    ) -> RecordResult:
        """Record the caller to `writer` (written as it arrives) until silence, a stop key or the maximum length.

        Recording starts at once and keeps every frame; the recogniser hears the message from its pre-roll, with
        its pauses, but not the silence before it nor the silence that ends it (only in a step live recognition took).
        A caller hanging up ends the recording with reason "hangup" (the message is kept and transcribed), it does
        not raise; a write that fails ends it with reason "write_failed". The file is finished off the event loop.
        """
        vad = VadConfig(stop_ms=end_silence_ms, no_input_ms=no_input_ms, max_utterance_ms=max_ms + end_silence_ms)
        endpointer = Endpointer(vad)
        live = self.engine is not None and transcribe and self._speech
        decoder = AsyncDecoder(self.engine, scheduler=self.scheduler) if live else None  # type: ignore[arg-type]
        reason = RecordEnd.MAX_LENGTH
        heard_speech = False
        self._typeahead = []
        try:
            for _ in range(max_ms // FRAME_MS):
                inbound = await self._step(None)
                try:
                    writer.write(inbound.audio)
                except OSError:  # a full disk: what was written is kept, the caller hears why it stopped
                    reason = RecordEnd.WRITE_FAILED
                    break
                if any(d in stop_keys for d in inbound.digits):
                    reason = RecordEnd.KEY
                    break
                events = endpointer.process(inbound.audio)
                if decoder is not None:
                    for e in events:
                        if isinstance(e, (SpeechStart, SpeechAudio)):
                            decoder.feed(e.audio)
                if any(isinstance(e, SpeechStart) for e in events):
                    heard_speech = True
                if any(isinstance(e, SpeechEnd) for e in events):
                    reason = RecordEnd.SILENCE
                    break
                if any(isinstance(e, NoInput) for e in events) and not heard_speech:
                    reason = RecordEnd.NO_INPUT
                    break
        except CallerHungUp:
            reason = RecordEnd.HANGUP  # callers often hang up right after speaking: keep and transcribe it all
        except BaseException:
            writer.close()
            if decoder is not None:
                await decoder.cancel()
            raise
        self._spoke_at = time.monotonic()
        sha = await asyncio.to_thread(writer.close)  # an fsync and a checksum: never on the loop that paces RTP
        transcript = await decoder.finish() if decoder is not None else None
        return RecordResult(writer.duration_ms, reason, transcript, sha)
