"""What a step of the flow that talks with the caller over several turns (a kb node, a record node) uses of the
flow runner: its call, flow, prompts and tickets, and its ways of playing, asking and deciding."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Protocol

from asr import intents
from asr.vad import VadConfig
from ivr.call import CallRecord, InputHeard, TicketSink
from ivr.flow.model import Branch, Flow
from ivr.media.callio import CallIO, Heard
from prompts.compose import Part
from prompts.library import PromptLibrary

__all__ = ["Dialogue"]


class Dialogue(Protocol):
    """The flow runner as its multi-turn steps see it."""

    flow: Flow
    io: CallIO
    prompts: PromptLibrary
    tickets: TicketSink
    call: CallRecord

    @property
    def style(self) -> str: ...

    def today(self) -> date: ...

    def _again(self, intent: str) -> str: ...

    def _vad(self, no_input_ms: int) -> VadConfig: ...

    def _intent(self, menu: intents.Menu, heard: Heard, entry: InputHeard) -> str: ...

    def _log_heard(self, nid: str, heard: Heard) -> InputHeard: ...

    def _ask(self, play: Callable[[], Awaitable[object]], timeout_ms: int) -> Awaitable[Heard]: ...

    def _play(self, prompt: str | None, interruptible: bool = True) -> Awaitable[str | None]: ...

    def _play_parts(self, parts: list[Part], interruptible: bool = True) -> Awaitable[str | None]: ...

    def _yes_no(self, nid: str, parts: list[Part], timeout_ms: int, retries: int) -> Awaitable[str | None]: ...

    def _branch(self, node: Branch) -> str: ...
