"""Emergencies a recogniser mishears, through the shipped flow: the ticket's dispatch suggestion (the real model)
finds them by sound, and a complaint that only comes close to one gets a question, never a silent normal ticket."""
from __future__ import annotations

from pathlib import Path

import pytest
from flow_harness import ScriptedEngine, count, fixture, run_call

from ivr.tickets.store import TicketStore
from ivr.triage.suggest import dispatch_suggester


@pytest.fixture(scope="module")
def suggest(tmp_path_factory: pytest.TempPathFactory):
    return dispatch_suggester(tmp_path_factory.mktemp("dispatch"))


def complaint(hotline, library, suggest, tmp_path: Path, heard: str, after: str = ""):
    store = TicketStore(f"sqlite:///{tmp_path}/ivr.db", suggest=suggest)
    return run_call(hotline, library, f"keys:1; say:{fixture('c01')}; {after}", tmp_path,
                    engine=ScriptedEngine([heard]), store=store)


def test_gas_heard_as_mei_qi_wei_4_is_put_through_at_once(hotline, library, suggest, tmp_path: Path) -> None:
    call = complaint(hotline, library, suggest, tmp_path, "我闻到楼道里有很大的煤气位")
    assert call.record.path == ["welcome", "main_menu=complaint", "complaint", "urgent_agent"]
    assert call.record.priority == "urgent" and count(call.played, library.get("urgent_check_gas")) == 0
    [ticket] = call.store.list()
    assert ticket.urgency == "emergency"


@pytest.mark.parametrize("answer, path_end, check, urgency", [
    ("wait:3500; keys:1", ["urgent_agent"], "gas=yes", "emergency"),
    ("wait:20000", ["urgent_agent"], "gas=no_answer", "normal"),  # no clear no: a person checks
    ("wait:3500; keys:2", ["complaint_thanks", "goodbye"], "gas=no", "normal"),
])
def test_close_to_gas_asks_the_caller_and_a_clear_no_alone_keeps_it_normal(hotline, library, suggest, tmp_path: Path,
                                                                           answer: str, path_end: list[str],
                                                                           check: str, urgency: str) -> None:
    call = complaint(hotline, library, suggest, tmp_path, "楼道里有股梅奇味", answer)
    assert count(call.played, library.get("urgent_check_gas")) >= 1
    assert call.record.path[:3] == ["welcome", "main_menu=complaint", "complaint"]
    assert call.record.path[3:] == path_end and call.record.vars["urgent_check"] == check
    assert ("urgent" in call.record.flags) == (path_end == ["urgent_agent"])
    [ticket] = call.store.list()
    assert ticket.suggestion is not None and ticket.suggestion["urgency_ask"] == "gas"
    assert ticket.urgency == urgency  # the caller's yes makes the ticket an emergency, audited as their answer
    trail = [(e.user, e.action, e.field, e.before, e.after) for e in call.store.audit(ticket.number)]
    assert trail == ([("caller", "confirmed", "urgency", "normal", "emergency")] if urgency == "emergency" else [])


def test_the_question_is_answered_by_voice_too(hotline, library, suggest, tmp_path: Path) -> None:
    store = TicketStore(f"sqlite:///{tmp_path}/ivr.db", suggest=suggest)
    call = run_call(hotline, library, f"keys:1; say:{fixture('c01')}; wait:3500; say:{fixture('m08')}", tmp_path,
                    engine=ScriptedEngine(["有人落谁了", "是的"]), store=store)
    assert call.record.path[-1] == "urgent_agent" and call.record.vars["urgent_check"] == "danger=yes"
    assert count(call.played, library.get("urgent_check_danger")) == 1


def test_an_everyday_complaint_asks_nothing(hotline, library, suggest, tmp_path: Path) -> None:
    call = complaint(hotline, library, suggest, tmp_path, "新的社保卡什么时候能拿到在哪里领")
    assert call.record.path[-2:] == ["complaint_thanks", "goodbye"] and "urgent_check" not in call.record.vars
