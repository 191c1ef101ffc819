"""Runs a flow over a CallIO: menus by key or speech, retries, the elderly path, records, transfers.

The runner never talks to SIP or files: it plays prompts and listens through `ivr.media.CallIO`, and hands
recordings to a `TicketSink`. No caller is ever stuck: after a menu's retries the caller moves on to `on_fail`
(the elderly path or a person), never to a hang-up.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from asr.results import Transcript
from asr.vad import VadConfig
from ivr.channel import CallerHungUp
from ivr.flow.model import Flow, Hangup, Menu, Option, Record, Say, Transfer
from ivr.logs import mask_number
from ivr.media import CallIO, Heard
from ivr.recording import RecordingWriter
from prompts.library import PromptLibrary, beep

__all__ = ["CallRecord", "TicketSink", "FlowRunner", "match_option"]

log = logging.getLogger(__name__)

MAX_STEPS = 200  # a guard against a flow that loops forever


@dataclass
class CallRecord:
    """What happened in one call: the path through the flow, what was heard, how it ended."""

    call_id: str
    caller: str
    started: datetime
    path: list[str] = field(default_factory=list)  # "node" or "node=choice"
    flags: set[str] = field(default_factory=set)  # e.g. {"elderly"}
    heard: list[dict[str, object]] = field(default_factory=list)
    outcome: str = ""  # "completed" | "caller_hung_up" | "transferred:<target>" | "error"
    tickets: list[str] = field(default_factory=list)


class TicketSink(Protocol):
    """Where recordings become tickets; `open` runs before recording starts, so a crash keeps the ticket."""

    def recording_path(self, call: CallRecord, kind: str) -> Path: ...

    def open(self, call: CallRecord, kind: str, recording: Path) -> str: ...

    def finish(self, ticket_id: str, call: CallRecord, audio_ms: int, sha256: str,
               transcript: Transcript | None) -> None: ...


def match_option(options: tuple[Option, ...], heard: Heard) -> Option | None:
    """The option a key press or transcript chose, or None."""
    if heard.kind == "dtmf":
        return next((o for o in options if o.key and o.key == heard.digits[:1]), None)
    if heard.kind == "speech" and heard.transcript is not None:
        text = heard.transcript.text
        for option in options:
            if any(p and p in text for p in option.phrases):
                return option
    return None


class FlowRunner:
    """Executes one call of a flow."""

    def __init__(self, flow: Flow, io: CallIO, prompts: PromptLibrary, tickets: TicketSink,
                 elderly_numbers: frozenset[str] = frozenset()) -> None:
        self.flow = flow
        self.io = io
        self.prompts = prompts
        self.tickets = tickets
        info = io.channel.info
        self.call = CallRecord(info.call_id, info.caller, datetime.now(timezone.utc))
        if info.caller in elderly_numbers:
            self.call.flags.add("elderly")

    @property
    def style(self) -> str:
        return "elderly" if "elderly" in self.call.flags else "standard"

    def _vad(self, no_input_ms: int) -> VadConfig:
        if self.style == "elderly":  # elderly callers get longer to answer and to pause
            return VadConfig(no_input_ms=min(60_000, no_input_ms * 3 // 2), stop_ms=1_200)
        return VadConfig(no_input_ms=no_input_ms)

    async def run(self) -> CallRecord:
        """Run the call to its end; never raises for a caller hanging up."""
        nid = self.flow.start
        log.info("call %s from %s: flow %s", self.call.call_id, mask_number(self.call.caller), self.flow.name)
        try:
            for _ in range(MAX_STEPS):
                node = self.flow.nodes[nid]
                self.call.path.append(nid)
                nxt = await self._step(node)
                if nxt is None:
                    break
                nid = nxt
            else:
                log.error("call %s: flow %s ran %d steps; sending the caller to a person",
                          self.call.call_id, self.flow.name, MAX_STEPS)
                await self.io.channel.transfer("general")
                self.call.outcome = "transferred:general"
            self.call.outcome = self.call.outcome or "completed"
        except CallerHungUp:
            self.call.outcome = "caller_hung_up"
            log.info("call %s: caller hung up at node %s", self.call.call_id, nid)
        return self.call

    async def _play(self, prompt: str | None, interruptible: bool = True) -> str | None:
        if not prompt:
            return None
        return await self.io.play(self.prompts.get(prompt, self.style), interruptible=interruptible)

    async def _step(self, node: object) -> str | None:
        if isinstance(node, Say):
            await self._play(node.prompt, node.interruptible)
            return node.next
        if isinstance(node, Menu):
            return await self._menu(node)
        if isinstance(node, Record):
            await self._record(node)
            return node.next
        if isinstance(node, Transfer):
            await self._play(node.prompt, interruptible=False)
            result = await self.io.channel.transfer(node.target)
            if result.ok:
                self.call.outcome = f"transferred:{node.target}"
                return None
            log.warning("call %s: transfer to %s failed: %s", self.call.call_id, node.target, result.reason)
            return node.on_fail or None
        if isinstance(node, Hangup):
            await self._play(node.prompt, interruptible=False)
            await self.io.channel.hangup()
            return None
        raise AssertionError(f"unknown node {node!r}")

    async def _menu(self, node: Menu) -> str:
        prompt = node.prompt
        failures = 0
        while True:
            await self._play(prompt)
            heard = await self.io.listen(self._vad(node.timeout_ms))
            self._log_heard(node.id, heard)
            if heard.kind == "dtmf" and heard.digits == self.flow.repeat_key:
                prompt = node.prompt
                continue
            option = match_option(node.options, heard)
            if option is None and heard.kind == "dtmf" and heard.digits == self.flow.agent_key and self.flow.agent_node:
                self.call.path[-1] = f"{node.id}=agent"
                return self.flow.agent_node
            if option is not None:
                self.call.flags.update(option.set_flags)
                self.call.path[-1] = f"{node.id}={option.name}"
                return option.next
            failures += 1
            if failures > node.retries:
                if self.flow.elderly_node and "elderly" not in self.call.flags:
                    self.call.flags.add("elderly")  # repeated trouble: the simpler, slower path
                    return self.flow.elderly_node
                return node.on_fail or self.flow.agent_node
            prompt = (node.no_input_prompt if heard.kind == "no_input" else node.no_match_prompt) or node.prompt

    async def _record(self, node: Record) -> None:
        await self._play(node.prompt, interruptible=False)
        if node.beep:
            await self.io.play(beep(), interruptible=False)
        path = self.tickets.recording_path(self.call, node.ticket_kind)
        ticket_id = self.tickets.open(self.call, node.ticket_kind, path)
        self.call.tickets.append(ticket_id)
        writer = RecordingWriter(path)
        result = await self.io.record(writer, max_ms=node.max_ms, end_silence_ms=node.end_silence_ms,
                                      no_input_ms=node.no_input_ms)
        self.call.heard.append({"node": node.id, "kind": "recording", "ms": result.audio_ms, "end": result.reason})
        self.tickets.finish(ticket_id, self.call, result.audio_ms, result.sha256, result.transcript)
        if result.reason == "hangup":
            raise CallerHungUp(self.call.call_id)

    def _log_heard(self, nid: str, heard: Heard) -> None:
        entry: dict[str, object] = {"node": nid, "kind": heard.kind, "t_ms": heard.t_ms}
        if heard.digits:
            entry["digits"] = heard.digits
        if heard.transcript is not None:
            entry["text"] = heard.transcript.text
            entry["confidence"] = round(heard.transcript.confidence, 3)
        self.call.heard.append(entry)
