"""Callers saturating two SIPp operators (UAS that answer and hold until our BYE); an elderly caller overtakes."""
import asyncio
import shutil
import time

import pytest

from dialing import dial
from ivr.config import AgentGroup
from ivr.queue import Announce, CallQueue, Connect, Priority, QueuePolicy, QueueEvent
from ivr.queue.callbacks import Callback, CallbackStore
from ivr.queue.ticker import DialbackResult, QueueRunner, callback_call_id
from ivr.sip.uac import proxy_of


pytestmark = [pytest.mark.sipp, pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed")]


class Operators:
    """Live callers' side without media: on Connect the operator (SIPp) is dialled and held for a while."""

    def __init__(self, queue: CallQueue, live: set[str]) -> None:
        self.queue, self.live = queue, live
        self.tasks: list[asyncio.Task[None]] = []

    def deliver(self, event: QueueEvent) -> bool:
        if event.call_id not in self.live or not isinstance(event, Connect):
            return False
        self.tasks.append(asyncio.create_task(self._talk(event)))
        return True

    async def _talk(self, event: Connect) -> None:
        self.queue.connected(event.call_id)
        await dial(event.agent_uri, proxy_of(event.agent_uri, ("127.0.0.1", 5060)), hold_s=0.5)
        self.queue.call_ended(event.agent_id)


def dialback_to(trunk: tuple[str, int]):
    async def dialback(event: Connect, cb: Callback) -> DialbackResult:
        citizen = await dial(f"sip:{cb.number}@{trunk[0]}:{trunk[1]}", trunk)
        if citizen.outcome != "answered":
            return DialbackResult(citizen.outcome)
        await dial(event.agent_uri, proxy_of(event.agent_uri, trunk), hold_s=0.5)
        return DialbackResult("answered", operator="talked")
    return dialback


def test_two_operators_saturated_elderly_first_then_callback(tmp_path, sipp):
    op1, p1 = sipp(["-sn", "uas"], 100)
    op2, p2 = sipp(["-sn", "uas"], 100)
    caller, pc = sipp(["-sn", "uas"], 1)  # the callback's caller
    store = CallbackStore(f"sqlite:///{tmp_path / 'cb.db'}")
    q = CallQueue([AgentGroup("general", wrap_up_s=0.0)], time.monotonic,
                  QueuePolicy(announce_every_s=0.2), handle_prior_s=0.5)
    q.add_agent("op1", f"sip:op1@127.0.0.1:{p1}", ("general",))
    q.add_agent("op2", f"sip:op2@127.0.0.1:{p2}", ("general",))
    announced: list[Announce] = []
    runner = QueueRunner(q, store, desk=Operators(q, {"c0", "c1", "c2", "eld"}),
                         dialback=dialback_to(("127.0.0.1", pc)),
                         on_event=lambda e: announced.append(e) if isinstance(e, Announce) else None)
    cb_holder = []

    async def main() -> None:
        await asyncio.sleep(0.5)  # SIPp binding
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        q.enqueue("c0", "general")
        q.enqueue("c1", "general")
        while len(runner.connects) < 2:
            await asyncio.sleep(0.01)
        q.enqueue("c2", "general")
        q.enqueue("eld", "general", Priority.ELDERLY)
        now = time.monotonic()
        cb_holder.append(store.book("13955556666", "general", 2, now, now, ticket="T-5"))
        runner.restore()  # as after a restart: the stored callback joins the queue at its place
        while q.length() or any(a.state.value == "on_call" for a in q.agents.values()) or len(runner.connects) < 5:
            await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(main())
    cb = cb_holder[0]
    order = [c.call_id for c in runner.connects]
    assert order == ["c0", "c1", "eld", "c2", callback_call_id(cb)]  # the elderly caller overtook c2
    assert caller.wait() == 0
    invites = sum((tmp_path / f"msgs{p}.log").read_text().count("INVITE sip:op") for p in (p1, p2))
    assert invites == 5  # every connect reached an operator
    assert store.get(cb).status == "done"
    assert any(a.call_id == "c2" for a in announced)
    assert q.stats.answered == 4
