"""A queued caller on a FileChannel (virtual time) with a real CallQueue, CallbackStore, QueueRunner and QueueDesk.

The queue's clock is the caller's channel time, and a ticker task steps the runner between the desk's 100 ms
hold steps, so a test of minutes of waiting runs in a second. Operators are FileChannels too: `place_call`
answers with one (or reports busy), `relay` bridges two channels frame by frame. `ReferringPhone` is a caller
whose phone answers REFERs as told.
"""
from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ivr.call import CallRecord
from ivr.channel.base import CallerHungUp, CallInfo, Channel, TransferResult
from ivr.channel.file import FileChannel, parse_script
from ivr.config import AgentGroup
from ivr.media.callio import CallIO
from ivr.queue import AgentState, CallQueue, QueuePolicy
from ivr.queue.callbacks import CallbackStore
from ivr.queue.desk import DeskPolicy, QueueDesk
from ivr.queue.ticker import QueueRunner
from prompts import PromptLibrary, load_catalogue

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Dialled:
    outcome: str
    status: int | None
    call_id: str
    channel: Channel | None


@dataclass
class Operators:
    """place_call stand-in: each call takes the next outcome ("answered" gives a FileChannel running `script`)."""
    outcomes: list[str]
    script: str = "!wait:2000; !hangup"
    calls: list[tuple[str, tuple[str, int]]] = field(default_factory=list)
    channels: list[FileChannel] = field(default_factory=list)

    async def __call__(self, uri: str, proxy: tuple[str, int]) -> Dialled:
        self.calls.append((uri, proxy))
        outcome = self.outcomes.pop(0)
        if outcome != "answered":
            return Dialled(outcome, 486 if outcome == "busy" else 408, f"op-{len(self.calls)}", None)
        ch = FileChannel(parse_script(self.script), CallInfo(f"op-{len(self.calls)}", "op"))
        self.channels.append(ch)
        return Dialled("answered", 200, ch.info.call_id, ch)


class ReferringPhone(FileChannel):
    """A caller whose phone answers each REFER with the next of `outcomes` after `after_ms` of call time; on a
    success the leg ends (as the UAS BYEs it)."""

    def __init__(self, script: str, info: CallInfo, outcomes: list[TransferResult], after_ms: int = 3000) -> None:
        super().__init__(parse_script(script), info)
        self.outcomes, self.after_ms = outcomes, after_ms
        self.referred: list[str] = []

    async def refer(self, target_uri: str, *, timeout_s: float = 32.0) -> TransferResult:
        self.referred.append(target_uri)
        outcome = dataclasses.replace(self.outcomes.pop(0), target=target_uri)
        until = self._t + self.after_ms
        while self._t < until and not self.ended:
            await asyncio.sleep(0)
        if self.ended:
            return TransferResult(False, target_uri, "the call ended during the transfer", accepted=True)
        if outcome.ok:
            await self.hangup()
        return outcome


async def relay(caller: Channel, operator: Channel) -> str:
    """Bridge stand-in: frames both ways until one side hangs up; the other is hung up. Returns who ended it."""
    back: bytes | None = None
    while True:
        try:
            heard = await caller.exchange(back)
        except CallerHungUp:
            await operator.hangup()
            return "caller"
        try:
            back = (await operator.exchange(heard.audio)).audio
        except CallerHungUp:
            await caller.hangup()
            return "operator"
        await asyncio.sleep(0)


def library(tmp_path: Path, cache: Path | None = None) -> PromptLibrary:
    """The shipped catalogue; without a rendered cache every prompt is a short tone (enough for the logic)."""
    return PromptLibrary(load_catalogue(REPO / "prompts" / "catalogue.yaml"), cache or tmp_path / "no-prompts")


@dataclass
class Scene:
    channel: FileChannel
    io: CallIO
    queue: CallQueue
    store: CallbackStore
    desk: QueueDesk
    runner: QueueRunner
    record: CallRecord
    operators: Operators


def scene(tmp_path: Path, script: str, *, caller: str = "13800138000", policy: QueuePolicy | None = None,
          operators: Operators | None = None, priority: str = "normal", cache: Path | None = None,
          desk: DeskPolicy | None = None, phone: list[TransferResult] | None = None) -> Scene:
    """One caller about to be queued in `general`, whose only operator op1 is busy with another call. `phone`:
    what the caller's phone answers to each REFER (None: a channel that cannot be referred)."""
    info = CallInfo("c1", caller)
    channel = (FileChannel(parse_script(script), info) if phone is None else ReferringPhone(script, info, phone))
    io = CallIO(channel, None)
    queue = CallQueue([AgentGroup("general", wrap_up_s=0.0), AgentGroup("elderly", wrap_up_s=0.0)],
                      lambda: io.t_ms / 1000, policy or QueuePolicy(announce_every_s=10.0), handle_prior_s=60.0)
    queue.add_agent("op1", "sip:op1@127.0.0.1:5999", ("general",))
    queue.enqueue("busy", "general")
    queue.tick()
    queue.connected("busy")  # op1 is on another call until the test ends it
    store = CallbackStore(f"sqlite:///{tmp_path / 'callbacks.db'}")
    ops = operators or Operators(["answered"])
    desk = QueueDesk(queue, library(tmp_path, cache), store=store, place_call=ops, bridge=relay,
                     trunk=("127.0.0.1", 5070), policy=desk)
    runner = QueueRunner(queue, store, desk=desk)
    record = CallRecord("c1", caller, datetime.now(timezone.utc), priority=priority, tickets=["20261129001"])
    return Scene(channel, io, queue, store, desk, runner, record, ops)


def run(s: Scene, *, each_tick: Callable[[Scene], None] = lambda s: None) -> TransferResult | BaseException:
    """Queue the caller and tick the runner until the desk returns (or raises: the exception is returned)."""
    async def main() -> TransferResult | BaseException:
        done = asyncio.Event()

        async def ticker() -> None:
            while not done.is_set():
                each_tick(s)
                s.runner.step()
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        try:
            return await s.desk.handle(s.io, s.record, "general")
        except CallerHungUp as exc:
            return exc
        finally:
            done.set()
            await task

    return asyncio.run(main())


def kinds(s: Scene) -> list[str]:
    return [str(h["kind"]) for h in s.record.heard]


def free_op1_after(seconds: float) -> Callable[[Scene], None]:
    """Ends op1's other call once the queue's clock passes `seconds`."""
    def tick(s: Scene) -> None:
        op1 = s.queue.agents["op1"]
        if op1.call_id == "busy" and s.queue.clock() >= seconds:
            s.queue.call_ended("op1")
    return tick


def op1_frees_then_op2_signs_in(s: Scene) -> None:
    """op1 frees at 3 s (and misses the call); op2, signed out, signs in at 20 s."""
    free_op1_after(3.0)(s)
    if s.queue.clock() >= 20.0 and s.queue.agents["op2"].state == AgentState.SIGNED_OUT:
        s.queue.set_state("op2", AgentState.AVAILABLE)
