"""The knowledge-base node with recogniser-like Mandarin transcripts (a scripted recogniser) through FileChannel,
on the fixture knowledge base (tests/ivr/kb/fixture_kb) with its prompts rendered by the real espeak-ng."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from flow_harness import FIXTURE_KB, REPO, Call, ScriptedEngine, count, fixture, rendered_kb, run_call

from asr.load import Admission, DecodeStats
from ivr.flow import Flow, load_flow
from ivr.flow.kbstep import OFFER_FLOOR, KbStats
from ivr.flow.model import Kb
from ivr.kb import DEFAULT_THRESHOLD, KnowledgeBase, load_kb
from prompts import PromptLibrary
from prompts.files import FilePrompts

FLOW = """\
name: kbtest
start: ask
agent_node: agent
nodes:
  ask:
    type: kb
    top: [ss_card_lost, ht_season, ht_fee]
    agent: agent
    done: bye
  agent: {type: transfer, target: general, prompt: transfer_agent}
  bye: {type: hangup, prompt: goodbye}
"""
SURE = "我的社保卡丢了怎么办"  # ss_card_lost, above the threshold (ivr.kb.DEFAULT_THRESHOLD)
VAGUE = "我想问一下那个卡的事情"  # below it: social-security entries, none sure
CLOSE = "社保的事"  # below it too: two social-security entries close
UNVERIFIED = "取暖费怎么交"  # ht_fee, sure, but an unverified sample
SAY = f"say:{fixture('m01')}; wait:1500"  # speech, ended by a pause; the scripted recogniser says what it heard


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_kb(FIXTURE_KB)


@pytest.fixture(scope="module")
def flow(catalogue, kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> Flow:
    path = tmp_path_factory.mktemp("flow") / "kbtest.yaml"
    path.write_text(FLOW, encoding="utf-8")
    return load_flow(path, catalogue.prompts, kb.by_id)


@pytest.fixture(scope="module")
def lib(catalogue, prompt_cache: Path, kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory
        ) -> PromptLibrary:
    cache = rendered_kb(kb, None, tmp_path_factory.mktemp("kb-prompts"))
    return PromptLibrary(catalogue, prompt_cache, REPO / "prompts" / "recorded", extra=FilePrompts(cache))


def call(flow: Flow, lib: PromptLibrary, kb: KnowledgeBase, script: str, tmp: Path, heard: list[str] = (),
         **kw: object) -> tuple[Call, KbStats]:
    stats = KbStats()
    done = run_call(flow, lib, script, tmp, engine=ScriptedEngine(list(heard)), kb=kb, kb_stats=stats,
                    **kw)  # type: ignore[arg-type]
    return done, stats


def spoken(c: Call, lib: PromptLibrary, entry: str) -> int:
    """How often the entry's answer was played (as a piece of the answer and its offer)."""
    return count(c.played, lib.piece(f"kb_{entry}"))


def answers_spoken(c: Call, lib: PromptLibrary, kb: KnowledgeBase) -> list[str]:
    return [e.id for e in kb.entries if lib.has(f"kb_{e.id}") and spoken(c, lib, e.id)]


def test_a_sure_question_is_confirmed_by_key_and_answered(flow, lib, kb, tmp_path: Path) -> None:
    assert kb.search(SURE)[0].entry.id == "ss_card_lost" and kb.search(SURE)[0].score >= DEFAULT_THRESHOLD
    c, stats = call(flow, lib, kb, f"{SAY}; keys:1; keys:2", tmp_path, [SURE])
    assert c.record.path == ["ask=ss_card_lost", "bye"]
    assert count(c.played, lib.piece("kbq_ss_card_lost")) == 1  # 您是想问社保卡丢失挂失和补办吗？
    assert answers_spoken(c, lib, kb) == ["ss_card_lost"] and spoken(c, lib, "ss_card_lost") == 1
    assert c.record.vars["kb_question"] == SURE and c.record.vars["kb_entry"] == "ss_card_lost"
    assert stats.snapshot() == dict(asked=1, answered=1, confirmed=1, declined=0, to_person=0, tickets=0)


def test_confirmed_by_voice_then_heard_again_then_another_question(flow, lib, kb, tmp_path: Path) -> None:
    c, stats = call(flow, lib, kb, f"{SAY}; {SAY}; keys:*; keys:1; {SAY}; {SAY}; keys:2", tmp_path,
                    [SURE, "是的", "暖气几号来", "对"])
    assert c.record.path == ["ask=ss_card_lost", "ask=ht_season", "bye"]
    assert spoken(c, lib, "ss_card_lost") == 2 and spoken(c, lib, "ht_season") == 1
    assert stats.snapshot() == dict(asked=2, answered=2, confirmed=2, declined=0, to_person=0, tickets=0)


def test_no_to_a_sure_entry_with_nothing_else_close_is_a_person(flow, lib, kb, tmp_path: Path) -> None:
    assert all(h.score < OFFER_FLOOR for h in kb.search(SURE, 4)[1:])
    c, stats = call(flow, lib, kb, f"{SAY}; {SAY}", tmp_path, [SURE, "不是"])
    assert c.record.path == ["ask=agent", "agent"] and answers_spoken(c, lib, kb) == []
    assert count(c.played, lib.get("kb_to_person")) == 1
    assert stats.snapshot() == dict(asked=1, answered=0, confirmed=0, declined=1, to_person=1, tickets=0)


@pytest.mark.parametrize("instead", ["不是，我是问暖气几号来", "暖气几号来"])
def test_a_question_asked_in_place_of_yes_or_no_is_put_to_the_caller_in_turn(flow, lib, kb, tmp_path: Path,
                                                                             instead: str) -> None:
    c, stats = call(flow, lib, kb, f"{SAY}; {SAY}; keys:1; keys:2", tmp_path, [SURE, instead])
    assert c.record.path == ["ask=ht_season", "bye"]
    assert [count(c.played, lib.piece(f"kbq_{e}")) for e in ("ss_card_lost", "ht_season")] == [1, 1]
    assert answers_spoken(c, lib, kb) == ["ht_season"]
    assert c.record.vars["kb_question"] == instead.removeprefix("不是，")  # what a ticket would keep
    assert stats.snapshot() == dict(asked=2, answered=1, confirmed=1, declined=1, to_person=0, tickets=0)


def test_yes_with_words_after_it_is_yes_and_no_naming_the_same_entry_is_no(flow, lib, kb, tmp_path: Path) -> None:
    c, _ = call(flow, lib, kb, f"{SAY}; {SAY}; keys:2", tmp_path, [SURE, "是的，社保卡丢了"])
    assert c.record.path == ["ask=ss_card_lost", "bye"]
    c, stats = call(flow, lib, kb, f"{SAY}; {SAY}", tmp_path / "no", [SURE, "不是社保卡"])
    assert c.record.path == ["ask=agent", "agent"] and count(c.played, lib.piece("kbq_ss_card_lost")) == 1
    assert stats.snapshot()["declined"] == 1


def test_below_the_threshold_the_close_entries_are_offered_by_key(flow, lib, kb, tmp_path: Path) -> None:
    hits = kb.search(CLOSE, 4)
    assert hits[0].score < DEFAULT_THRESHOLD and [h.entry.id for h in hits if h.score >= OFFER_FLOOR] == [
        "ss_card_lost", "ss_contribution_query"]
    c, stats = call(flow, lib, kb, f"{SAY}; keys:2; keys:2", tmp_path, [CLOSE])
    assert c.record.path == ["ask=ss_contribution_query", "bye"]
    assert count(c.played, lib.piece("kb_choices")) == 1
    assert [count(c.played, lib.piece(f"kbt_{e}")) for e in ("ss_card_lost", "ss_contribution_query")] == [1, 1]
    assert count(c.played, lib.piece("kb_key_3")) == 0 and count(c.played, lib.piece("kbq_ss_card_lost")) == 0
    assert answers_spoken(c, lib, kb) == ["ss_contribution_query"]
    assert stats.snapshot() == dict(asked=1, answered=1, confirmed=0, declined=0, to_person=0, tickets=0)


def test_below_the_threshold_no_answer_is_spoken_before_the_caller_chooses(flow, lib, kb, tmp_path: Path) -> None:
    hits = kb.search(VAGUE, 4)
    assert hits and hits[0].score < DEFAULT_THRESHOLD
    c, stats = call(flow, lib, kb, f"{SAY}; keys:0", tmp_path, [VAGUE])
    assert c.record.path == ["ask=agent", "agent"] and c.record.outcome == "transferred:general"
    assert answers_spoken(c, lib, kb) == []
    assert all(count(c.played, lib.piece(f"kbq_{h.entry.id}")) == 0 for h in hits if lib.has(f"kbq_{h.entry.id}"))
    offered = [h.entry.id for h in hits if h.entry.status == "checked" and h.score >= OFFER_FLOOR][:3]
    assert [count(c.played, lib.piece(f"kbt_{e}")) for e in offered] == [1] * len(offered)
    assert count(c.played, lib.piece("kbt_ht_fee")) == 0 if lib.has("kbt_ht_fee") else True
    assert stats.snapshot()["to_person"] == 1 and stats.snapshot()["answered"] == 0


def test_an_unverified_entry_is_never_spoken_the_caller_is_offered_a_person(flow, lib, kb, tmp_path: Path) -> None:
    best = kb.search(UNVERIFIED)[0]
    assert best.entry.id == "ht_fee" and best.entry.status == "unverified" and best.score >= DEFAULT_THRESHOLD
    assert not lib.has("kb_ht_fee") and not lib.has("kbq_ht_fee")  # never rendered either
    c, stats = call(flow, lib, kb, SAY, tmp_path, [UNVERIFIED])
    assert c.record.path == ["ask=agent", "agent"] and c.record.outcome == "transferred:general"
    assert count(c.played, lib.get("kb_to_person")) == 1 and answers_spoken(c, lib, kb) == []
    assert stats.snapshot() == dict(asked=1, answered=0, confirmed=0, declined=0, to_person=1, tickets=0)


def test_an_expired_entry_is_not_spoken(flow, lib, kb, tmp_path: Path) -> None:
    question = "退休了以后养老金怎么领"
    entry = kb.get("ss_pension_claim")
    assert entry is not None and entry.expires is not None and kb.search(question)[0].entry is entry
    after = datetime(entry.expires.year + 1, 1, 5, 10, 30)
    c, _ = call(flow, lib, kb, f"{SAY}; keys:1; keys:2", tmp_path / "late", [question], clock=lambda: after)
    assert spoken(c, lib, "ss_pension_claim") == 0 and "ask=ss_pension_claim" not in c.record.path
    c, _ = call(flow, lib, kb, f"{SAY}; keys:1; keys:2", tmp_path / "now", [question])  # the day before: spoken
    assert spoken(c, lib, "ss_pension_claim") == 1


def test_keys_only_callers_hear_the_most_asked_entries(flow, lib, kb, tmp_path: Path) -> None:
    """Live recognition takes no step: the caller is told once to use keys and hears the node's list; an unverified
    entry of the list is left out, the keys of the others stay their place in it."""
    full = Admission(DecodeStats(), initial=0, minimum=0, maximum=0, reserve=0)
    c, stats = call(flow, lib, kb, "keys:2; keys:2", tmp_path, [], admission=full)
    assert c.record.path == ["ask=ht_season", "bye"]
    assert count(c.played, lib.get("keys_only")) == 1 and count(c.played, lib.piece("kb_keys")) == 1
    assert count(c.played, lib.piece("kbt_ss_card_lost")) == 1 and count(c.played, lib.piece("kb_key_3")) == 0
    assert [h["kind"] for h in c.record.heard] == ["dtmf", "dtmf"]
    assert stats.snapshot()["asked"] == 1 and stats.snapshot()["answered"] == 1


def test_a_key_at_the_question_picks_a_most_asked_entry_at_once(flow, lib, kb, tmp_path: Path) -> None:
    c, _ = call(flow, lib, kb, "keys:1; keys:2", tmp_path)
    assert c.record.path == ["ask=ss_card_lost", "bye"] and count(c.played, lib.piece("kb_keys")) == 0
    c, _ = call(flow, lib, kb, "keys:#; keys:1; keys:2", tmp_path / "list")  # #: the list first
    assert c.record.path == ["ask=ss_card_lost", "bye"] and count(c.played, lib.piece("kb_keys")) == 1


def test_silence_asks_again_then_offers_the_list(flow, lib, kb, tmp_path: Path) -> None:
    c, _ = call(flow, lib, kb, "wait:9000; wait:9000; keys:0", tmp_path)
    assert count(c.played, lib.get("kb_ask_again")) == 1 and count(c.played, lib.piece("kb_keys")) == 1
    assert c.record.path == ["ask=agent", "agent"]


def test_a_ticket_keeps_the_question_and_the_entry_given(flow, lib, kb, tmp_path: Path) -> None:
    c, stats = call(flow, lib, kb, f"{SAY}; keys:1; keys:3", tmp_path, [SURE])
    assert c.record.path == ["ask=ss_card_lost", "ask=ticket", "bye"]
    [ticket] = c.store.list()
    full = c.store.get(ticket.number)
    assert full.kind == "consult" and full.text == SURE and "ss_card_lost" in full.note and "kb" in full.flags
    assert full.recording == "" and c.record.tickets == [ticket.number]
    assert count(c.played, lib.piece("kb_ticket_saved")) == 1
    assert stats.snapshot()["tickets"] == 1


def test_asking_for_a_person_at_the_question(flow, lib, kb, tmp_path: Path) -> None:
    c, stats = call(flow, lib, kb, SAY, tmp_path, ["转人工"])
    assert c.record.path == ["ask=agent", "agent"] and stats.snapshot()["asked"] == 0 and answers_spoken(c, lib, kb) == []


def test_without_a_knowledge_base_the_caller_reaches_a_person(flow, lib, tmp_path: Path) -> None:
    c = run_call(flow, lib, "", tmp_path)
    assert c.record.path == ["ask=agent", "agent"] and c.record.outcome == "transferred:general"


def test_the_node_is_a_kb_node_with_its_defaults(flow) -> None:
    node = flow.nodes["ask"]
    assert isinstance(node, Kb) and node.top == ("ss_card_lost", "ht_season", "ht_fee") and node.ticket
    assert (node.threshold, node.prompt, node.agent, node.done) == (DEFAULT_THRESHOLD, "kb_ask", "agent", "bye")


def test_the_shipped_flow_answers_a_spoken_question(hotline, library, shipped_kb, tmp_path: Path) -> None:
    """Consult (2), then the question in the caller's words: a sure match is confirmed with 1, a less sure one
    offered first in the list, 1: the answer either way, then 2 (no more questions) and goodbye."""
    stats = KbStats()
    c = run_call(hotline, library, f"keys:2; {SAY}; keys:1; keys:2", tmp_path, kb=shipped_kb, kb_stats=stats,
                 engine=ScriptedEngine(["社保卡丢了怎么办"]))
    assert c.record.path == ["welcome", "main_menu=consult", "consult=ss_card_lost", "goodbye"]
    assert count(c.played, library.piece("kb_ss_card_lost")) == 1
    assert stats.snapshot()["asked"] == 1 and stats.snapshot()["answered"] == 1


def test_the_elderly_path_reaches_the_knowledge_base_by_key(hotline, library, shipped_kb, tmp_path: Path) -> None:
    c = run_call(hotline, library, "keys:3; keys:1; keys:2", tmp_path, kb=shipped_kb,
                 elderly_numbers=frozenset({"13800138000"}))
    assert c.record.path == ["welcome", "elderly_menu=consult", "consult=ss_card_lost", "goodbye"]
    assert count(c.played, library.piece("kb_ss_card_lost", "elderly")) == 1  # slower and louder
    c = run_call(hotline, library, "keys:3; keys:0", tmp_path / "agent", kb=shipped_kb,
                 elderly_numbers=frozenset({"13800138000"}))
    assert c.record.path[-2:] == ["consult=agent", "elderly_agent"] and c.record.priority == "elderly"
