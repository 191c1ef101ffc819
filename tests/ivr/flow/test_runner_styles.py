"""Slower, louder, again: a caller who asks hears the prompt again slower or louder, and every prompt after it for
the rest of the call, from the styles `ivr prompts build` rendered (the shipped flow over FileChannel, recogniser-like
Mandarin transcripts)."""
from __future__ import annotations

from pathlib import Path

import pytest
from flow_harness import ScriptedEngine, count, fixture, run_call


@pytest.mark.parametrize("asked, style", [(["说慢点"], "slow"), (["大声点"], "loud"), (["你说得太快了"], "slow"),
                                          (["说慢点", "声音大一点"], "slow_loud")])
def test_asked_slower_or_louder_the_menu_and_the_rest_of_the_call_follow(hotline, library, tmp_path: Path,
                                                                         asked: list[str], style: str) -> None:
    says = "".join(f"say:{fixture('m07')}; wait:1500; " for _ in asked)
    call = run_call(hotline, library, f"{says}keys:1; say:{fixture('c01')}", tmp_path,
                    engine=ScriptedEngine([*asked, "我要反映一下小区门口的垃圾"]))
    assert call.record.path[:3] == ["welcome", "main_menu=complaint", "complaint"]
    assert count(call.played, library.get("main_menu")) == 1
    assert count(call.played, library.get("main_menu", style)) == 1  # the menu again, in the asked style
    assert count(call.played, library.get("complaint_intro", style)) == 1  # and what follows
    assert count(call.played, library.get("complaint_intro")) == 0
    assert {"slow", "loud"} & call.record.flags == set(style.split("_"))
    assert "elderly" not in call.record.flags


def test_not_heard_is_the_same_prompt_again(hotline, library, tmp_path: Path) -> None:
    call = run_call(hotline, library, f"say:{fixture('m07')}; wait:1500; keys:1; say:{fixture('c01')}", tmp_path,
                    engine=ScriptedEngine(["没听清", "我要反映一下小区门口的垃圾"]))
    assert count(call.played, library.get("main_menu")) == 2
    assert count(call.played, library.get("complaint_intro")) == 1 and not {"slow", "loud"} & call.record.flags


def test_louder_asked_at_a_yes_no_question_replays_it_louder(hotline, library, tmp_path: Path) -> None:
    from ivr.tickets.store import TicketStore

    store = TicketStore(f"sqlite:///{tmp_path}/ivr.db", suggest=lambda text: {"urgency_ask": "gas"})
    call = run_call(hotline, library, f"keys:1; say:{fixture('c01')}; wait:3500; say:{fixture('m07')}; wait:1500; "
                    "keys:2", tmp_path, engine=ScriptedEngine(["楼道里有股梅奇味", "大声点"]), store=store)
    assert count(call.played, library.get("urgent_check_gas")) == 1
    assert count(call.played, library.get("urgent_check_gas", "loud")) == 1
    assert call.record.vars["urgent_check"] == "gas=no" and call.record.path[-2:] == ["complaint_thanks", "goodbye"]
    assert count(call.played, library.get("complaint_thanks", "loud")) == 1


def test_the_elderly_path_is_slower_and_louder_from_the_start(hotline, library, tmp_path: Path) -> None:
    call = run_call(hotline, library, "keys:1", tmp_path, caller="13900000001",
                    elderly_numbers=frozenset({"13900000001"}))
    assert call.record.path[:2] == ["welcome", "elderly_menu=complaint"]
    assert count(call.played, library.get("welcome", "elderly")) == 1 and count(call.played, library.get("welcome")) == 0
    assert count(call.played, library.get("complaint_intro", "elderly")) == 1
