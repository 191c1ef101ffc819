"""A file-driven simulated caller: plays WAV files and presses keys when the system waits for them.

The caller follows a script of steps, for example ``keys:1; say:audio_fixtures/zh/c01.wav; hangup``. A step
starts once the system has been quiet (sent no audio) for `quiet_ms`, as a person waits for the prompt to end;
a step written with a leading ``!`` (``!say:...``, ``!keys:...``) starts at once, barging in on the prompt.
Time is virtual: `exchange()` returns at once, and every frame counts 20 ms.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from asr.audio import FRAME_BYTES, FRAME_MS, SILENCE_FRAME, frames, read_wav
from ivr.channel.base import CallerHungUp, CallInfo, Channel, Inbound, TransferResult
from ivr.errors import IvrError

__all__ = ["ScriptStep", "ScriptError", "parse_script", "FileChannel"]

log = logging.getLogger(__name__)

KEY_MS = 120  # one key press every 120 ms
KINDS = ("keys", "say", "wait", "hangup")
DTMF_KEYS = set("0123456789*#ABCD")


class ScriptError(IvrError, ValueError):
    """A caller script that cannot be run."""


@dataclass(frozen=True)
class ScriptStep:
    kind: str  # keys | say | wait | hangup
    value: str = ""
    barge: bool = False  # start at once instead of waiting for the system to be quiet
    audio: bytes = b""  # for say: the 8 kHz PCM, read when the script is parsed


def parse_script(text: str) -> list[ScriptStep]:
    """Parse ``kind:value; kind:value ...``; WAV files are read now, so a bad file fails before the call."""
    steps: list[ScriptStep] = []
    for raw in (part.strip() for part in text.replace("\n", ";").split(";")):
        if not raw:
            continue
        barge = raw.startswith("!")
        kind, _, value = raw.lstrip("!").partition(":")
        kind, value = kind.strip(), value.strip()
        if kind not in KINDS:
            raise ScriptError(f"caller script step {raw!r}: unknown kind {kind!r}; use one of {', '.join(KINDS)}")
        if kind == "keys":
            bad = [k for k in value if k not in DTMF_KEYS]
            if not value or bad:
                raise ScriptError(f"caller script step {raw!r}: keys must be some of 0-9 * # A-D")
            steps.append(ScriptStep(kind, value, barge))
        elif kind == "say":
            steps.append(ScriptStep(kind, value, barge, read_wav(Path(value))))
        elif kind == "wait":
            if not value.isdigit():
                raise ScriptError(f"caller script step {raw!r}: wait takes milliseconds, e.g. wait:2000")
            steps.append(ScriptStep(kind, value, barge))
        else:
            steps.append(ScriptStep(kind, value, barge))
    return steps


class FileChannel(Channel):
    """A simulated caller driven by a script, in virtual time."""

    def __init__(
        self,
        steps: list[ScriptStep],
        info: CallInfo | None = None,
        *,
        quiet_ms: int = 400,
        max_call_ms: int = 15 * 60 * 1000,
        idle_hangup_ms: int = 60_000,
        inband_dtmf: bool = False,
    ) -> None:
        self.info = info or CallInfo(call_id="sim-1", caller="13800000000")
        self.inband_dtmf = inband_dtmf
        self._steps = list(steps)
        self._quiet_ms = quiet_ms
        self._max_call_ms = max_call_ms
        self._idle_hangup_ms = idle_hangup_ms
        self._t = 0
        self._quiet_for = 0
        self._idle_for = 0
        self._current: list[tuple[bytes, tuple[str, ...]]] = []  # frames of the running step
        self.played = bytearray()  # everything the system sent, for tests and `simulate --save-audio`
        self.transfers: list[str] = []
        self.hung_up_by_system = False
        self.ended = False

    async def exchange(self, out: bytes | None) -> Inbound:
        if self.ended:
            raise CallerHungUp(self.info.call_id)
        if out is not None and len(out) != FRAME_BYTES:
            raise ValueError(f"exchange() takes {FRAME_BYTES}-byte frames, not {len(out)}")
        self.played += out if out is not None else SILENCE_FRAME
        self._quiet_for = self._quiet_for + FRAME_MS if out is None else 0
        if not self._current and self._steps:
            step = self._steps[0]
            if step.barge or self._quiet_for >= self._quiet_ms:
                self._steps.pop(0)
                self._start(step)
        t = self._t
        self._t += FRAME_MS
        if t >= self._max_call_ms:
            self.ended = True
            raise CallerHungUp(self.info.call_id)
        if self._current:
            audio, digits = self._current.pop(0)
            self._idle_for = 0
            return Inbound(audio, t, digits)
        self._idle_for += FRAME_MS
        if not self._steps and self._idle_for >= self._idle_hangup_ms:
            log.info("simulated caller %s gives up after %d s of nothing to do", self.info.call_id, t // 1000)
            self.ended = True
            raise CallerHungUp(self.info.call_id)
        return Inbound(SILENCE_FRAME, t)

    def _start(self, step: ScriptStep) -> None:
        if step.kind == "hangup":
            self.ended = True
            raise CallerHungUp(self.info.call_id)
        if step.kind == "say":
            self._current = [(f, ()) for f in frames(step.audio)]
        elif step.kind == "wait":
            self._current = [(SILENCE_FRAME, ())] * (int(step.value) // FRAME_MS)
        else:
            per_key = KEY_MS // FRAME_MS
            for key in step.value:
                self._current.append((SILENCE_FRAME, (key,)))
                self._current += [(SILENCE_FRAME, ())] * (per_key - 1)

    @property
    def script_done(self) -> bool:
        return not self._steps and not self._current

    async def hangup(self) -> None:
        self.hung_up_by_system = True
        self.ended = True

    async def transfer(self, target: str) -> TransferResult:
        self.transfers.append(target)
        self.ended = True
        return TransferResult(ok=True, target=target, reason="simulated operator")
