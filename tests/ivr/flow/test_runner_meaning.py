"""The shipped flow understands callers in their own words: its menus' learned intent models beside the keywords,
with recogniser-like Mandarin transcripts (a scripted recogniser) through FileChannel."""
from __future__ import annotations

from pathlib import Path

import pytest
from flow_harness import ScriptedEngine, count, fixture, run_call


@pytest.mark.parametrize("heard, path", [
    ("我上次反映的事怎么样了", ["welcome", "main_menu=progress", "progress"]),  # not a complaint because of 反映
    ("问个事儿", ["welcome", "main_menu=consult"]),
    ("我年纪大了不会案件", ["welcome", "main_menu=elderly", "elderly_agent"]),  # 按键 heard as 案件
    ("找个真人", ["welcome", "main_menu=agent", "general_agent"]),
])
def test_the_main_menu_understands_own_words(hotline, library, tmp_path: Path, heard: str, path: list[str]) -> None:
    call = run_call(hotline, library, f"say:{fixture('m01')}", tmp_path, engine=ScriptedEngine([heard]))
    assert call.record.heard[0]["text"] == heard
    assert call.record.path[:len(path)] == path


def test_not_wanting_a_complaint_is_no_complaint(hotline, library, shipped_kb, tmp_path: Path) -> None:
    call = run_call(hotline, library, f"say:{fixture('m01')}; wait:1500; keys:2; keys:1", tmp_path,
                    engine=ScriptedEngine(["不要投诉"]), kb=shipped_kb)
    assert call.record.path[:3] == ["welcome", "main_menu=consult", "consult=ss_card_lost"]
    assert count(call.played, library.get("main_menu_no_match")) == 1


def test_the_elderly_menu_understands_own_words(hotline, library, tmp_path: Path) -> None:
    call = run_call(hotline, library, f"say:{fixture('m03')}", tmp_path / "e", engine=ScriptedEngine(["上回那事有人管了没"]),
                    elderly_numbers=frozenset({"13800138000"}))
    assert call.record.path[:2] == ["welcome", "elderly_menu=progress"]


def test_the_call_record_says_how_a_spoken_choice_was_understood(hotline, library, tmp_path: Path) -> None:
    call = run_call(hotline, library, f"say:{fixture('m01')}; wait:1500; say:{fixture('m01')}", tmp_path,
                    engine=ScriptedEngine(["我上次反映的事怎么样了"]))
    by_meaning = call.record.heard[0]
    assert (by_meaning["intent"], by_meaning["by"]) == ("progress", "meaning") and by_meaning["score"] >= 0.5
    assert by_meaning["evidence"] and by_meaning["evidence"] in "我上次反映的事怎么样了"
    call = run_call(hotline, library, f"say:{fixture('m01')}", tmp_path / "k", engine=ScriptedEngine(["转人公"]))
    assert {k: call.record.heard[0][k] for k in ("intent", "by", "evidence")} == {  # type: ignore[literal-required]
        "intent": "agent", "by": "builtin", "evidence": "转人公"}
