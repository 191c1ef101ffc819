"""The queue as a waiting caller hears it: hold music, position and wait, a callback that keeps the place, a person.

`QueueDesk.handle(io, call, group)` runs on the caller's own task when the flow hands the call to a queue. The
queue's ticker (QueueRunner) sends this call's events to `deliver()`; the desk plays them between 100 ms steps of
hold music:

- Announce: "您前面还有N位来电在等待，预计等待M分钟" (or 您是下一位 / 不到一分钟);
- OfferCallback (wait over the threshold, or the callback key pressed at any time): "按1预约回拨，为您保留排队位置";
  the caller ID (if it looks like a phone number) or a keyed number is read back digit by digit and confirmed, the
  callback is stored (CallbackStore.book) and keeps the caller's place, and only then the caller hears it is booked.
  No callback is offered while its store has no room; a booking that fails anyway is "没有预约成功，请继续等待" and
  the caller keeps their place;
- Connect: "正在为您接通", the operator is called and the two legs bridged (or, with `transfer="refer"`, the
  caller's phone is sent a REFER to the operator; a phone that will not take it is bridged); an operator who does
  not answer frees the caller's place back at the head of the queue.

A caller who hangs up while waiting is counted abandoned. Every step is noted in the call record's `heard` list
(kind ``queue_*``) and logged.
"""
from __future__ import annotations

import asyncio
import logging
import math
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Unpack

from sqlalchemy.exc import SQLAlchemyError

from asr.vad import VadConfig
from ivr.call import CallRecord, QueueNote, QueueNoteFields
from ivr.channel.base import CallerHungUp, TransferResult
from ivr.live import LiveState
from ivr.logs import mask_number
from ivr.media.callio import CallIO, HeardKind
from ivr.media.hold import Bridge, HoldAudio, HungUpRinging, PlaceCall, ring
from ivr.queue.call_queue import CallQueue
from ivr.queue.callbacks import CallbackStore
from ivr.queue.model import (
    AgentState, Announce, Connect, OfferCallback, Priority, QueueEvent, Rejected, UnknownCall,
)
from ivr.queue.ticker import callback_call_id, release
from ivr.sip.uac import proxy_of
from ivr.storage import database_location, problem
from prompts.compose import Counted, Digits, Part, queue_announcement, queue_position
from prompts.library import PromptLibrary

__all__ = ["DeskPolicy", "QueueDesk", "plausible_number"]

log = logging.getLogger(__name__)

FREE_AGENT_STEPS = 5  # 100 ms hold steps to wait for the Connect when an operator is free as the caller arrives

_PHONE = re.compile(r"1[3-9]\d{9}|0\d{9,11}|[2-9]\d{6,7}")  # mobile, landline with area code, local landline


def plausible_number(number: str) -> bool:
    """A number worth calling back: a mainland mobile, a landline with its area code, or a local landline."""
    return _PHONE.fullmatch(number) is not None


@dataclass(frozen=True)
class DeskPolicy:
    callback_key: str = "1"  # pressed while waiting: the callback offer at once
    number_min_digits: int = 7
    number_max_digits: int = 12
    number_tries: int = 3
    answer_ms: int = 6_000  # time to answer the offer and the read-back
    keying_ms: int = 10_000  # time to start keying a number
    transfer: str = "bridge"  # "bridge": relay media between the legs; "refer": blind transfer by REFER
    refer_timeout_s: float = 32.0  # a REFER's transfer must report the operator answered within this
    refer_busy_s: float = 300.0  # a referred operator is on a call until they set their state, or this long


@dataclass
class _Call:
    io: CallIO
    record: CallRecord
    group: str
    style: str
    inbox: deque[QueueEvent] = field(default_factory=deque)
    cannot_book: bool = False  # a booking failed (the store is full): no more callback offers in this call

    @property
    def call_id(self) -> str:
        return self.record.call_id


class QueueDesk:
    """Queues live callers and looks after them until they reach a person or book a callback.

    `store` None means callbacks are not offered. `trunk` is where operator calls go when an agent's URI names
    no port (None: the URI's host, port 5060).
    """

    def __init__(self, queue: CallQueue, prompts: PromptLibrary, *, store: CallbackStore | None,
                 place_call: PlaceCall, bridge: Bridge, trunk: tuple[str, int] | None, policy: DeskPolicy | None = None,
                 live: LiveState | None = None, hold: bytes | None = None) -> None:
        self.queue, self.prompts, self.store = queue, prompts, store
        self.place_call, self.bridge, self.trunk = place_call, bridge, trunk
        self.policy = policy or DeskPolicy()
        self.live = live or LiveState()
        self.hold = hold
        self._calls: dict[str, _Call] = {}

    def caller(self, call_id: str) -> str | None:
        """The number of the live caller waiting as `call_id`, if one waits here."""
        call = self._calls.get(call_id)
        return call.record.caller if call is not None else None

    def deliver(self, event: QueueEvent) -> bool:
        """Hand a queue event to the waiting caller it is for; False when no caller here waits for it."""
        call = self._calls.get(event.call_id)
        if call is None:
            return False
        call.inbox.append(event)
        return True

    async def handle(self, io: CallIO, record: CallRecord, group: str) -> TransferResult:
        """Queue the call in `group` with the flow's priority and ticket; returns when the caller has been put
        through (ok), has booked a callback (ok, call ended) or cannot be queued (not ok: the flow's on_fail).
        Raises CallerHungUp when the caller hangs up (the call is counted abandoned)."""
        if group not in self.queue.groups:
            return TransferResult(False, group, f"no queue group {group!r}")
        call = _Call(io, record, group, record.style)
        if not any(group in a.groups and a.state != AgentState.SIGNED_OUT for a in self.queue.agents.values()):
            log.warning("call %s: no operator is signed in for %s", call.call_id, group)
            await self._say(call, ["queue_no_operator"])
            return TransferResult(False, group, "no operator signed in")
        ticket = record.tickets[-1] if record.tickets else ""
        events = self.queue.enqueue(call.call_id, group, Priority.parse(record.priority), ticket)
        if any(isinstance(e, Rejected) for e in events):
            self._note(call, "queue_rejected")
            await self._say(call, ["queue_full"])
            return TransferResult(False, group, "queue full")
        self._calls[call.call_id] = call
        self.live.call_updated(call.call_id, state="queued")
        call.inbox.extend(events)
        try:
            return await self._wait(call)
        except BaseException:  # hung up, or the server stopping: the caller leaves the queue
            self._left(call)
            raise
        finally:
            del self._calls[call.call_id]

    # -- waiting ----------------------------------------------------------------------------------------------
    async def _wait(self, call: _Call) -> TransferResult:
        hold = HoldAudio(self.hold)
        hinted = False
        for _ in range(FREE_AGENT_STEPS):  # an operator is free: put the caller through without announcing
            if not self._agent_free(call.group) or self._connect_pending(call):
                break
            await hold.step(call.io)
        if self._connect_pending(call):
            call.inbox = deque(e for e in call.inbox if isinstance(e, Connect))
        while True:
            event = call.inbox.popleft() if call.inbox else None
            if isinstance(event, Announce):
                if not any(isinstance(e, Announce) for e in call.inbox):  # else a newer one is waiting
                    await self._announce(call, event)
                    offer_next = any(isinstance(e, OfferCallback) for e in call.inbox)
                    if not hinted and not offer_next and self._can_book(call):
                        hinted = True
                        await self._say(call, ["queue_hold_hint"])
            elif isinstance(event, OfferCallback):
                if await self._offer(call, event):
                    return TransferResult(True, call.group, "callback booked")
            elif isinstance(event, Connect):
                if await self._connect(call, event):
                    return TransferResult(True, call.group, "connected")
            elif isinstance(event, Rejected):  # the centre gave this node up: the caller cannot wait any longer
                self._note(call, "queue_rejected")
                await self._say(call, ["queue_full"])
                return TransferResult(False, call.group, event.reason)
            key = call.io.take_key()  # between events too, so announcements never starve the key
            if key == self.policy.callback_key and self._can_book(call):
                try:
                    call.inbox.append(self.queue.offer_on_key(call.call_id))
                except UnknownCall:
                    pass  # an operator has just been found: the Connect is on its way
            elif key is None and event is None:
                await hold.step(call.io)

    def _left(self, call: _Call) -> None:
        """The caller hung up: abandoned if still waiting; an operator already found for them is freed."""
        try:
            self.queue.abandon(call.call_id)
            self._note(call, "queue_abandoned")
        except UnknownCall:
            pass  # being connected, or booked as a callback
        for event in call.inbox:
            if isinstance(event, Connect):
                release(self.queue, event)

    async def _announce(self, call: _Call, event: Announce) -> None:
        ahead = event.position - 1
        if math.isfinite(event.wait_s):
            parts = queue_announcement(ahead, event.wait_minutes)
        else:  # no projection (no operator on duty): the position alone
            parts = queue_position(ahead)
        self._note(call, "queue_announce", position=event.position, minutes=event.wait_minutes,
                   prompts=[p.prompt if isinstance(p, Counted) else str(p) for p in parts])
        await self._say(call, parts)

    # -- callback ---------------------------------------------------------------------------------------------
    def _can_book(self, call: _Call) -> bool:
        """Whether a callback may be offered: only one that can be stored first (never while its store is full)."""
        if self.store is None or call.cannot_book:
            return False
        if not self.store.has_room():
            call.cannot_book = True
            log.warning("call %s: no callback offered: %s has no room", call.call_id,
                        database_location(self.store.engine))
            self._note(call, "queue_no_callback", reason="store full")
            return False
        return True

    async def _offer(self, call: _Call, event: OfferCallback) -> bool:
        if self._connect_pending(call) or not self._can_book(call):
            return False
        self._note(call, "queue_offer", reason=event.reason,
                   wait_s=round(event.wait_s) if math.isfinite(event.wait_s) else None)
        await self._say(call, ["callback_offer"])
        if await self._key(call, self.policy.answer_ms) != "1":
            return False
        number = await self._number(call)
        if number is None:
            await self._say(call, ["callback_not_booked"])
            return False
        if self._connect_pending(call):
            return False  # a person is free right now: put the caller through instead
        try:
            cb_id = self._book(call, number)
        except (SQLAlchemyError, OSError) as exc:
            call.cannot_book = True
            log.error("call %s: callback not booked (%s: %s); the caller keeps their place", call.call_id,
                      database_location(self.store.engine), problem(exc))  # type: ignore[union-attr]
            self._note(call, "queue_callback_failed", problem=problem(exc))
            await self._say(call, ["callback_not_booked"])
            return False
        self._note(call, "queue_callback", callback=cb_id)
        await self._say(call, ["callback_booked"])
        await call.io.channel.hangup()
        return True

    async def _number(self, call: _Call) -> str | None:
        """The number to call back, confirmed by the caller; None after the tries."""
        p = self.policy
        candidate = call.record.caller if plausible_number(call.record.caller) else None
        for _ in range(p.number_tries):
            if candidate is None:
                await self._say(call, ["callback_enter_number"])
                heard = await call.io.listen(VadConfig(no_input_ms=p.keying_ms), max_digits=p.number_max_digits,
                                             terminator="#", interdigit_ms=5_000, speech=False)
                if not (heard.kind == HeardKind.DTMF and heard.digits.isdigit()
                        and p.number_min_digits <= len(heard.digits) <= p.number_max_digits):
                    await self._say(call, ["callback_bad_number"])
                    continue
                candidate = heard.digits
            await self._say(call, ["callback_number_is", Digits(candidate), "callback_confirm"])
            answer = await self._key(call, p.answer_ms)
            if answer == "1":
                return candidate
            candidate = None
        return None

    def _book(self, call: _Call, number: str) -> int:
        """Store the callback (committed before the caller is told) and let it hold the caller's place."""
        assert self.store is not None
        queued = next(c for c in self.queue.queued() if c.call_id == call.call_id)
        cb_id = self.store.book(number, queued.group, int(queued.priority), queued.entered,
                                self.queue.rank(call.call_id), queued.ticket)
        self.queue.to_callback(call.call_id)
        self.queue.remove(call.call_id)
        self.queue.enqueue(callback_call_id(cb_id), queued.group, queued.priority, queued.ticket, callback=True,
                           entered=queued.entered)
        log.info("call %s: callback %d to %s keeps the caller's place", call.call_id, cb_id, mask_number(number))
        return cb_id

    # -- a person ---------------------------------------------------------------------------------------------
    async def _connect(self, call: _Call, event: Connect) -> bool:
        """Put the caller through to the operator; False: the operator did not answer and the caller is back in
        the queue."""
        self._note(call, "queue_connect", agent=event.agent_id, waited_s=round(event.waited_s, 1))
        if self.policy.transfer == "refer":
            referred = await self._refer(call, event)
            if referred is not None:
                return referred
        return await self._ring_and_bridge(call, event, announce=self.policy.transfer != "refer")

    async def _ring_and_bridge(self, call: _Call, event: Connect, announce: bool) -> bool:
        """Ring the operator while the caller hears hold music; bridge on answer."""
        prompt = self.prompts.compose(["queue_connecting"], call.style) if announce else None
        try:
            result = await ring(call.io, self.place_call(event.agent_uri, proxy_of(event.agent_uri, self.trunk)),
                                self.hold, prompt)
        except HungUpRinging as exc:
            release(self.queue, event, talked=exc.answered)
            raise
        if result.outcome != "answered" or result.channel is None:
            await self._missed(call, event, f"{result.outcome} {result.status or ''}".strip())
            return False
        self.queue.connected(call.call_id)
        self.live.call_updated(call.call_id, state="with agent")
        try:
            await self.bridge(call.io.channel, result.channel)
        finally:
            self.queue.call_ended(event.agent_id)
        return True

    async def _refer(self, call: _Call, event: Connect) -> bool | None:
        """Blind transfer by REFER. True: done, the operator's call goes on out of sight; False: the operator did
        not answer; None: the caller's phone did not take the REFER (bridge instead)."""
        referring = asyncio.ensure_future(call.io.channel.refer(event.agent_uri, timeout_s=self.policy.refer_timeout_s))
        try:
            await self._say(call, ["queue_connecting"])  # the caller's phone calls the operator meanwhile
            await HoldAudio(self.hold).until_done(call.io, referring)
        except CallerHungUp:  # the transfer done (our leg is ended), or the caller gone
            if not (await referring).ok:
                release(self.queue, event)
                raise
        result = referring.result()
        if result.ok:
            self.queue.connected(call.call_id)
            self.queue.handed_off(event.agent_id, self.policy.refer_busy_s)
            self._note(call, "queue_referred", agent=event.agent_id)
            self.live.call_updated(call.call_id, state="transferred")
            return True
        if not result.accepted:
            log.info("call %s: the phone did not take the REFER (%s); bridging instead", call.call_id, result.reason)
            return None
        await self._missed(call, event, result.reason)
        return False

    async def _missed(self, call: _Call, event: Connect, why: str) -> None:
        log.warning("call %s: operator %s did not answer (%s); the caller keeps their place",
                    call.call_id, event.agent_id, why)
        self.queue.connect_failed(call.call_id, event.agent_id)
        self._note(call, "queue_operator_missed", agent=event.agent_id, outcome=why)
        await self._say(call, ["queue_operator_missed"])

    # -- helpers ----------------------------------------------------------------------------------------------
    def _agent_free(self, group: str) -> bool:
        return any(group in a.groups and a.state == AgentState.AVAILABLE for a in self.queue.agents.values())

    @staticmethod
    def _connect_pending(call: _Call) -> bool:
        return any(isinstance(e, Connect) for e in call.inbox)

    async def _key(self, call: _Call, within_ms: int) -> str:
        """One key: typed ahead (the rest stay typed ahead for the next question) or pressed within the time."""
        if call.io.next_key() is not None:
            return call.io.take_key() or ""
        heard = await call.io.listen(VadConfig(no_input_ms=within_ms), max_digits=1, speech=False)
        return heard.digits if heard.kind == HeardKind.DTMF else ""

    async def _say(self, call: _Call, parts: list[Part]) -> None:
        await call.io.play(self.prompts.compose(parts, call.style), interruptible=False)

    def _note(self, call: _Call, kind: str, **fields: Unpack[QueueNoteFields]) -> None:
        call.record.heard.append(QueueNote(node="queue", kind=kind, t_ms=call.io.t_ms, **fields))
        log.info("call %s: %s %s", call.call_id, kind, " ".join(f"{k}={v}" for k, v in fields.items()))
