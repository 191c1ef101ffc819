"""QueueDesk over a simulated caller: announcements, callback booking (durable first), connect, abandon, full."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from desk_harness import (
    Operators, ReferringPhone, free_op1_after, kinds, op1_frees_then_op2_signs_in, run, scene,
)

from ivr.channel.base import CallerHungUp, TransferResult
from ivr.queue import AgentState, QueuePolicy
from ivr.queue.callbacks import CallbackStore
from ivr.queue.desk import DeskPolicy, plausible_number


def test_waiting_caller_hears_position_and_wait_then_hangs_up_abandoned(tmp_path: Path) -> None:
    s = scene(tmp_path, "!wait:25000; !hangup")
    s.queue.enqueue("a1", "general")
    s.queue.enqueue("a2", "general")
    result = run(s)
    assert isinstance(result, CallerHungUp)
    announces = [h for h in s.record.heard if h["kind"] == "queue_announce"]
    assert len(announces) >= 3  # on entry, then every 10 s
    assert announces[0]["position"] == 3
    assert announces[0]["prompts"] == ["queue_position", "queue_wait_minutes"]
    assert kinds(s)[-1] == "queue_abandoned"
    assert s.queue.stats.abandoned == 1 and s.queue.length() == 2  # a1 and a2 still wait


def test_elderly_caller_is_queued_ahead_of_normal_callers(tmp_path: Path) -> None:
    s = scene(tmp_path, "!wait:500; !hangup", priority="elderly")
    s.queue.enqueue("a1", "general")
    s.queue.enqueue("a2", "general")
    run(s)
    first = next(h for h in s.record.heard if h["kind"] == "queue_announce")
    assert first["position"] == 1 and first["prompts"] == ["queue_next"]


def test_callback_key_books_a_callback_on_the_caller_id_keeping_the_place(tmp_path: Path) -> None:
    s = scene(tmp_path, "!wait:1000; !keys:1; keys:1; keys:1")
    s.queue.enqueue("a1", "general")
    result = run(s)
    assert result == TransferResult(True, "general", "callback booked")
    assert kinds(s) == ["queue_announce", "queue_offer", "queue_callback"]
    offer = next(h for h in s.record.heard if h["kind"] == "queue_offer")
    assert offer["reason"] == "key"
    [cb] = CallbackStore(f"sqlite:///{tmp_path / 'callbacks.db'}").outstanding()
    assert (cb.number, cb.ticket, cb.group, cb.status) == ("13800138000", "20261129001", "general", "pending")
    assert [c.call_id for c in s.queue.queued()] == ["a1", f"cb-{cb.id}"]  # the place behind a1 is kept
    assert s.queue.stats.callbacks_booked == 1 and s.queue.stats.abandoned == 0
    assert s.channel.hung_up_by_system


def test_threshold_offer_keyed_number_read_back_and_confirmed(tmp_path: Path) -> None:
    # an anonymous caller ID: the caller keys a number, hears it back and confirms it
    s = scene(tmp_path, "keys:1; keys:02088886666#; keys:1", caller="anonymous",
              policy=QueuePolicy(announce_every_s=60.0, offer_callback_over_s=30.0))
    result = run(s)
    assert result == TransferResult(True, "general", "callback booked")
    assert next(h for h in s.record.heard if h["kind"] == "queue_offer")["reason"] == "threshold"
    [cb] = s.store.outstanding()
    assert cb.number == "02088886666"


def test_caller_id_declined_then_a_keyed_number_is_booked(tmp_path: Path) -> None:
    s = scene(tmp_path, "!wait:200; !keys:1; keys:1; keys:2; keys:13911112222#; keys:1")
    assert run(s) == TransferResult(True, "general", "callback booked")
    [cb] = s.store.outstanding()
    assert cb.number == "13911112222"


def test_too_short_a_number_is_refused_and_the_caller_keeps_waiting(tmp_path: Path) -> None:
    s = scene(tmp_path, "!wait:200; !keys:1; keys:1; keys:123#; keys:45#; keys:6#; !hangup", caller="anonymous")
    assert isinstance(run(s), CallerHungUp)
    assert s.store.outstanding() == [] and s.queue.stats.abandoned == 1


def test_booked_callback_survives_a_kill_before_the_caller_is_told(tmp_path: Path) -> None:
    """The process is SIGKILLed on the first frame after booking, before the confirmation prompt is heard."""
    proc = subprocess.run([sys.executable, str(Path(__file__).parent / "desk_proc.py"), str(tmp_path)],
                          env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.returncode == -signal.SIGKILL
    [cb] = CallbackStore(f"sqlite:///{tmp_path / 'callbacks.db'}").outstanding()
    assert cb.number == "13800138000" and cb.status == "pending"


def test_free_operator_is_rung_and_bridged(tmp_path: Path) -> None:
    s = scene(tmp_path, "!wait:60000")  # the operator ends the call after 2 s
    result = run(s, each_tick=free_op1_after(5.0))
    assert result == TransferResult(True, "general", "connected")
    assert kinds(s)[-1] == "queue_connect"
    assert s.operators.calls == [("sip:op1@127.0.0.1:5999", ("127.0.0.1", 5999))]
    assert s.channel.hung_up_by_system  # the operator hung up, so the caller's leg was ended
    assert s.queue.agents["op1"].state in (AgentState.WRAP_UP, AgentState.AVAILABLE)
    assert s.queue.stats.answered == 2  # "busy" and c1


def test_operator_not_answering_puts_the_caller_back_at_the_head(tmp_path: Path) -> None:
    ops = Operators(["busy", "answered"])
    s = scene(tmp_path, "!wait:60000", operators=ops)
    s.queue.add_agent("op2", "sip:op2@127.0.0.1:5998", ("general",), AgentState.SIGNED_OUT)

    assert run(s, each_tick=op1_frees_then_op2_signs_in) == TransferResult(True, "general", "connected")
    assert kinds(s).count("queue_connect") == 2 and "queue_operator_missed" in kinds(s)
    assert [uri for uri, _ in ops.calls] == ["sip:op1@127.0.0.1:5999", "sip:op2@127.0.0.1:5998"]
    assert s.queue.agents["op1"].state == AgentState.SIGNED_OUT


REFER = DeskPolicy(transfer="refer", refer_busy_s=120.0)
TRANSFERRED = TransferResult(True, "", accepted=True)


def test_refer_hands_the_caller_to_the_operator_and_the_call_goes_on_out_of_sight(tmp_path: Path) -> None:
    s = scene(tmp_path, "!wait:60000", desk=REFER, phone=[TRANSFERRED])
    assert run(s, each_tick=free_op1_after(5.0)) == TransferResult(True, "general", "connected")
    assert isinstance(s.channel, ReferringPhone) and s.channel.referred == ["sip:op1@127.0.0.1:5999"]
    assert s.operators.calls == []  # no leg of ours to the operator
    assert kinds(s)[-2:] == ["queue_connect", "queue_referred"]
    assert s.queue.agents["op1"].state == AgentState.ON_CALL and s.queue.out_of_sight("op1")
    assert s.queue.stats.answered == 2


def test_a_phone_that_will_not_take_the_refer_is_bridged_instead(tmp_path: Path) -> None:
    refused = TransferResult(False, "", "REFER refused with 501")
    for i, phone in enumerate([None, [refused]]):  # a channel that cannot refer; a phone that refuses
        s = scene(tmp_path / str(i), "!wait:60000", desk=REFER, phone=phone)
        assert run(s, each_tick=free_op1_after(5.0)) == TransferResult(True, "general", "connected")
        assert s.operators.calls == [("sip:op1@127.0.0.1:5999", ("127.0.0.1", 5999))]
        assert "queue_referred" not in kinds(s) and not s.queue.out_of_sight("op1")
        assert s.channel.hung_up_by_system  # the operator ended the bridged call


def test_refer_to_an_operator_who_does_not_answer_keeps_the_callers_place(tmp_path: Path) -> None:
    busy = TransferResult(False, "", "the transfer target answered 486", accepted=True)
    s = scene(tmp_path, "!wait:60000", desk=REFER, phone=[busy, TRANSFERRED])
    s.queue.add_agent("op2", "sip:op2@127.0.0.1:5998", ("general",), AgentState.SIGNED_OUT)

    assert run(s, each_tick=op1_frees_then_op2_signs_in) == TransferResult(True, "general", "connected")
    assert s.channel.referred == ["sip:op1@127.0.0.1:5999", "sip:op2@127.0.0.1:5998"]
    assert kinds(s).count("queue_connect") == 2 and "queue_operator_missed" in kinds(s)
    assert s.queue.agents["op1"].state == AgentState.SIGNED_OUT and s.queue.out_of_sight("op2")
    assert s.operators.calls == []


def test_caller_hanging_up_during_the_refer_frees_the_operator(tmp_path: Path) -> None:
    s = scene(tmp_path, "!wait:6000; !hangup", desk=REFER, phone=[TRANSFERRED])
    assert isinstance(run(s, each_tick=free_op1_after(5.0)), CallerHungUp)
    assert s.queue.agents["op1"].state == AgentState.AVAILABLE and not s.queue.out_of_sight("op1")
    assert "queue_referred" not in kinds(s)


def test_full_queue_and_no_operator_are_refused_politely(tmp_path: Path) -> None:
    s = scene(tmp_path, "!wait:60000", policy=QueuePolicy(max_length=1))
    s.queue.enqueue("a1", "general")
    assert run(s) == TransferResult(False, "general", "queue full")
    assert kinds(s) == ["queue_rejected"] and not s.channel.hung_up_by_system
    s = scene(tmp_path / "2", "!wait:60000")
    s.queue.set_state("op1", AgentState.AVAILABLE)
    s.queue.set_state("op1", AgentState.SIGNED_OUT)
    assert run(s) == TransferResult(False, "general", "no operator signed in")


def test_plausible_numbers() -> None:
    assert all(map(plausible_number, ["13800138000", "02088886666", "01012345678", "88886666"]))
    assert not any(map(plausible_number, ["anonymous", "12345", "110", "+8613800138000", "23800138000"]))


def test_caller_arriving_when_an_operator_is_free_goes_straight_through(tmp_path: Path) -> None:
    s = scene(tmp_path, "!wait:60000")
    s.queue.add_agent("op2", "sip:op2@127.0.0.1:5998", ("general",))  # free as the caller arrives
    assert run(s) == TransferResult(True, "general", "connected")
    assert s.operators.calls[0][0] == "sip:op2@127.0.0.1:5998"
    assert kinds(s) == ["queue_connect"]  # no position announcement first


def test_no_operator_in_the_flow_leaves_a_message_as_a_ticket(tmp_path: Path) -> None:
    """The shipped flow: 0 at the main menu, nobody signed in: the caller is told and records a complaint."""
    import asyncio

    from desk_harness import REPO

    from ivr.channel.base import Channel
    from ivr.channel.file import FileChannel, parse_script
    from ivr.flow import load_flow
    from ivr.flow.runner import FlowRunner
    from ivr.media.callio import CallIO
    from ivr.tickets import TicketStore
    from ivr.tickets.sink import StoreSink

    class Queued(FileChannel):
        async def transfer(self, target: str) -> TransferResult:
            return await s.desk.handle(io, runner.call, target)

    s = scene(tmp_path, "")
    s.queue.set_state("op1", AgentState.AVAILABLE)
    s.queue.set_state("op1", AgentState.SIGNED_OUT)
    channel: Channel = Queued(parse_script("keys:0; wait:3000"))
    io = CallIO(channel, None)
    tickets = TicketStore(f"sqlite:///{tmp_path / 'tickets.db'}")
    runner = FlowRunner(load_flow(REPO / "flows" / "hotline.yaml"), io, s.desk.prompts,
                        StoreSink(tickets, tmp_path / "rec"))
    call = asyncio.run(runner.run())
    assert call.path[-4:] == ["elderly_agent", "complaint", "complaint_thanks", "goodbye"]
    [ticket] = tickets.list()
    assert ticket.kind == "complaint"


def test_a_caller_who_asked_for_slower_louder_prompts_keeps_them_in_the_queue(tmp_path: Path, prompt_cache: Path) -> None:
    s = scene(tmp_path, "!wait:500; !hangup", cache=prompt_cache)
    s.record.flags.update({"slow", "loud"})  # 说慢点, 大声点 earlier in the call
    run(s)
    played = bytes(s.channel.played)

    def opening(style: str) -> bytes:  # the first 200 ms of speech of "queue_next" in that style (the caller hangs up
        audio = s.desk.prompts.get("queue_next", style)  # early); played on its own, it is played as rendered
        start = next(i for i in range(0, len(audio), 2) if audio[i:i + 2] != b"\x00\x00")
        return audio[start:start + 3200]

    assert opening("slow_loud") in played and opening("standard") not in played
