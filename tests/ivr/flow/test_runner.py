"""The runner over FileChannel with real caller recordings: keys, speech (fixture-transcript recogniser),
barge-in, no-input, no-match, retries, the elderly path, repeat, hang-up during a prompt."""
from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from flow_harness import at, count, fixture, run_call

from asr.audio import FRAME_MS
from ivr.channel.base import CallInfo
from ivr.channel.file import FileChannel, parse_script
from ivr.flow.runner import FlowRunner
from ivr.media.callio import CallIO
from ivr.tickets.lookup import store_lookup
from ivr.tickets.sink import StoreSink
from ivr.tickets.store import TicketStore
from ivr.triage.suggest import dispatch_suggester
from prompts.compose import Digits
from prompts.library import DIGIT_GAP_MS, GROUP_GAP_MS, WORD_GAP_MS
from prompts.shaping import ONSET_MS


def ms(pcm: bytes) -> int:
    return len(pcm) // 16


def test_keys_complaint_records_a_ticket_with_its_transcript(hotline, library, fake_engine, tmp_path: Path) -> None:
    call = run_call(hotline, library, f"keys:1; say:{fixture('c01')}", tmp_path, engine=fake_engine)
    assert call.record.path == ["welcome", "main_menu=complaint", "complaint", "complaint_thanks", "goodbye"]
    assert call.record.outcome == "completed" and call.channel.hung_up_by_system
    [ticket] = call.store.list()
    assert ticket.kind == "complaint" and ticket.transcript is not None
    assert ticket.transcript.text == "我要反映一下我们小区门口的垃圾好几天没人清理了"


def test_spoken_choice_m01_complaint(hotline, library, fake_engine, tmp_path: Path) -> None:
    call = run_call(hotline, library, f"say:{fixture('m01')}; wait:1500; say:{fixture('c03')}", tmp_path, engine=fake_engine)
    assert call.record.path[:3] == ["welcome", "main_menu=complaint", "complaint"]
    assert call.record.heard[0]["kind"] == "speech" and call.record.heard[0]["text"] == "投诉"


def test_spoken_m02_consult_then_keys_to_an_answer(hotline, library, shipped_kb, fake_engine, tmp_path: Path
                                                   ) -> None:
    call = run_call(hotline, library, f"say:{fixture('m02')}; wait:1500; keys:3; keys:2", tmp_path, engine=fake_engine,
                    kb=shipped_kb)
    assert call.record.path == ["welcome", "main_menu=consult", "consult=hf_purchase_withdraw", "goodbye"]
    assert count(call.played, library.piece("kb_hf_purchase_withdraw")) == 1


def test_answer_offers_repeat_more_and_a_person(hotline, library, shipped_kb, tmp_path: Path) -> None:
    """The consult keys of old (1 社保卡, 2 供暖, 3 公积金, 4 居住证) reach the knowledge base's most asked entries."""
    call = run_call(hotline, library, "keys:2; keys:2; keys:*; keys:1; keys:4; keys:0", tmp_path, kb=shipped_kb)
    assert call.record.path == ["welcome", "main_menu=consult", "consult=ht_season", "consult=rp_apply",
                                "consult=agent", "general_agent"]
    assert count(call.played, library.piece("kb_ht_season")) == 2  # * played it again
    assert call.record.outcome == "transferred:general" and call.record.priority == "normal"


def test_spoken_m04_person_in_business_hours_and_after(hotline, library, fake_engine, tmp_path: Path) -> None:
    day = run_call(hotline, library, f"say:{fixture('m04')}", tmp_path / "a", engine=fake_engine, clock=at(10))
    assert day.record.path == ["welcome", "main_menu=agent", "general_agent"]
    assert day.channel.transfers == ["general"]
    night = run_call(hotline, library, f"say:{fixture('m04')}; wait:1500; say:{fixture('c02')}", tmp_path / "b",
                     engine=fake_engine, clock=at(2))
    assert night.record.path[:4] == ["welcome", "main_menu=agent", "after_hours", "complaint"]
    assert night.channel.transfers == [] and len(night.store.list()) == 1


def test_spoken_m07_repeat_replays_the_menu(hotline, library, fake_engine, tmp_path: Path) -> None:
    call = run_call(hotline, library, f"say:{fixture('m07')}; wait:1500; keys:4; say:{fixture('c05')}", tmp_path,
                    engine=fake_engine)
    assert call.record.path[:3] == ["welcome", "main_menu=suggestion", "suggestion"]
    assert count(call.played, library.get("main_menu")) == 2
    assert count(call.played, library.get("main_menu_no_match")) == 0  # repeating is not a failure


def test_star_repeats_the_menu(hotline, library, tmp_path: Path) -> None:
    call = run_call(hotline, library, "keys:*; keys:1; hangup", tmp_path)
    assert count(call.played, library.get("main_menu")) == 2
    assert call.record.path[1] == "main_menu=complaint" and "elderly" not in call.record.flags


def test_asking_twice_to_repeat_switches_to_the_elderly_style(hotline, library, fake_engine, tmp_path: Path) -> None:
    call = run_call(hotline, library, f"say:{fixture('m07')}; wait:1500; say:{fixture('m07')}; wait:1500; keys:1; "
                    f"say:{fixture('c07')}", tmp_path, engine=fake_engine)
    assert [h.get("text") for h in call.record.heard[:2]] == ["再说一遍", "再说一遍"]
    assert count(call.played, library.get("main_menu")) == 2
    assert count(call.played, library.get("main_menu", "elderly")) == 1  # the third time slower and louder
    assert count(call.played, library.get("complaint_intro", "elderly")) == 1
    assert "elderly" in call.record.flags


def test_asked_again_and_then_slower_gets_it_slower(hotline, library, fake_engine, tmp_path: Path) -> None:
    call = run_call(hotline, library, f"say:{fixture('m07')}; wait:1500; say:{fixture('e01')}; wait:1500; keys:1; "
                    f"say:{fixture('c07')}", tmp_path, engine=fake_engine)
    assert [h.get("text") for h in call.record.heard[:2]] == ["再说一遍", "我听不清楚，说慢一点"]
    assert count(call.played, library.get("main_menu")) == 2
    assert count(call.played, library.get("main_menu", "slow")) == 1  # the third time slower, as asked
    assert count(call.played, library.get("complaint_intro", "slow")) == 1
    assert "slow" in call.record.flags and "elderly" not in call.record.flags


def test_star_during_a_say_repeats_it(hotline, library, tmp_path: Path) -> None:
    call = run_call(hotline, library, "!wait:2000; !keys:*; keys:0", tmp_path)
    assert count(call.played, library.get("welcome")) == 2
    assert call.record.path == ["welcome", "main_menu=elderly", "elderly_agent"]


def test_keys_barge_in_cut_the_prompt_and_are_kept(hotline, library, tmp_path: Path) -> None:
    welcome = ms(library.get("welcome"))
    call = run_call(hotline, library, f"!wait:{welcome + 1000}; !keys:1; hangup", tmp_path)
    assert call.record.path[1] == "main_menu=complaint"
    assert count(call.played, library.get("main_menu"), probe_ms=200) == 1
    assert call.record.heard[0]["t_ms"] < welcome + 1500  # the menu stopped at the key, it did not play out


def test_speech_barge_in_on_the_menu(hotline, library, fake_engine, tmp_path: Path) -> None:
    welcome = ms(library.get("welcome"))
    menu = ms(library.get("main_menu"))
    call = run_call(hotline, library, f"!wait:{welcome + 1500}; !say:{fixture('m02')}; wait:1500; keys:1; keys:2", tmp_path,
                    engine=fake_engine)
    assert call.record.path[1] == "main_menu=consult"
    heard = call.record.heard[0]
    assert heard["kind"] == "speech" and heard["text"] == "咨询"
    assert heard["t_ms"] < welcome + menu  # answered before the menu would have ended


def test_a_silent_caller_reaches_a_person_after_one_menu_with_elderly_priority(hotline, library,
                                                                               tmp_path: Path) -> None:
    """Silence is not a wrong answer: after the welcome and one main menu, the main menu's 4 s of silence put the
    caller through (no "没有听到您的选择" and the menu again), never a hang-up."""
    call = run_call(hotline, library, "", tmp_path, idle_hangup_ms=10 * 60_000)
    assert call.record.path == ["welcome", "main_menu", "elderly_agent"]  # no second menu for a silent caller
    assert [h["kind"] for h in call.record.heard] == ["no_input"]
    assert call.record.outcome == "transferred:elderly" and call.record.priority == "elderly"
    assert "elderly" in call.record.flags
    assert count(call.played, library.get("main_menu_no_input")) == 0
    assert count(call.played, library.get("elderly_menu", "elderly")) == 0
    assert count(call.played, library.get("transfer_agent", "elderly")) == 1  # slower, louder style
    assert not call.channel.hung_up_by_system
    heard_ms = ms(library.get("welcome")) + ms(library.get("main_menu")) + 4000 + ms(library.get("transfer_agent",
                                                                                              "elderly"))
    assert heard_ms <= ms(call.played) <= heard_ms + 10 * FRAME_MS  # the prompts and the wait, nothing more


def test_a_wrong_key_then_silence_goes_to_the_elderly_menu(hotline, library, tmp_path: Path) -> None:
    call = run_call(hotline, library, "keys:9; wait:5000; keys:0", tmp_path)
    assert call.record.path == ["welcome", "main_menu", "elderly_menu=agent", "elderly_agent"]
    assert [h["kind"] for h in call.record.heard][:2] == ["dtmf", "no_input"]
    assert count(call.played, library.get("main_menu_no_match")) == 1


def test_an_urgent_complaint_is_put_through_at_once_ahead_of_the_queue(hotline, library, fake_engine,
                                                                        tmp_path: Path) -> None:
    store = TicketStore(f"sqlite:///{tmp_path}/ivr.db", suggest=lambda text: {"transfer_now": True,
                                                                                "urgency_level": "emergency"})
    call = run_call(hotline, library, f"keys:1; say:{fixture('c04')}", tmp_path, engine=fake_engine, store=store)
    assert call.record.path == ["welcome", "main_menu=complaint", "complaint", "urgent_agent"]
    assert "urgent" in call.record.flags and call.record.priority == "urgent"
    assert call.channel.transfers == ["general"]
    assert count(call.played, library.get("transfer_urgent")) == 1
    [ticket] = call.store.list()
    assert ticket.urgency == "emergency"


def test_a_complaint_that_is_not_urgent_ends_with_thanks(hotline, library, fake_engine, tmp_path: Path) -> None:
    store = TicketStore(f"sqlite:///{tmp_path}/ivr.db", suggest=dispatch_suggester(tmp_path))
    call = run_call(hotline, library, f"keys:1; say:{fixture('c04')}", tmp_path, engine=fake_engine, store=store)
    assert call.record.path[-2:] == ["complaint_thanks", "goodbye"] and "urgent" not in call.record.flags


def test_no_match_keys_then_elderly_path_by_behaviour(hotline, library, tmp_path: Path) -> None:
    call = run_call(hotline, library, "keys:9; keys:8; keys:1; say:" + str(fixture("c04")), tmp_path)
    assert call.record.path[:4] == ["welcome", "main_menu", "elderly_menu=complaint", "complaint"]
    assert count(call.played, library.get("main_menu_no_match")) == 1
    assert count(call.played, library.get("complaint_intro", "elderly")) == 1
    [ticket] = call.store.list()
    assert "elderly" in ticket.flags


def test_unrecognised_speech_is_a_no_match(hotline, library, fake_engine, tmp_path: Path) -> None:
    call = run_call(hotline, library, f"say:{fixture('n01')}; wait:1500; keys:1; say:{fixture('c06')}", tmp_path,
                    engine=fake_engine)
    assert call.record.path[1:3] == ["main_menu=complaint", "complaint"]
    assert count(call.played, library.get("main_menu_no_match")) == 1


def test_registered_elderly_number_gets_the_simple_menu(hotline, library, tmp_path: Path) -> None:
    call = run_call(hotline, library, "keys:0", tmp_path, caller="13900000001",
                    elderly_numbers=frozenset({"13900000001"}))
    assert call.record.path == ["welcome", "elderly_menu=agent", "elderly_agent"]
    assert count(call.played, library.get("welcome", "elderly")) == 1
    assert call.record.flags >= {"elderly", "registered_elderly"}


def test_elderly_key_in_main_menu_reaches_a_person_with_priority(hotline, library, tmp_path: Path) -> None:
    call = run_call(hotline, library, "keys:0", tmp_path)
    assert call.record.path == ["welcome", "main_menu=elderly", "elderly_agent"]
    assert call.channel.transfers == ["elderly"] and call.record.priority == "elderly"


def test_hangup_in_the_middle_of_a_prompt(hotline, library, tmp_path: Path) -> None:
    call = run_call(hotline, library, "!wait:1000; !hangup", tmp_path)
    assert call.record.outcome == "caller_hung_up" and call.record.path == ["welcome"]
    assert len(call.played) < len(library.get("welcome"))


def test_hangup_during_the_readback(hotline, library, tmp_path: Path) -> None:
    call = run_call(hotline, library, "keys:3; keys:20261128001#; !wait:800; !hangup", tmp_path)
    assert call.record.outcome == "caller_hung_up" and call.record.path[-1] == "progress"


def _seed_ticket(store) -> str:
    ticket = store.create(caller="13800138000", call_id="old", kind="complaint", menu_path=(), flags=(),
                          recording="x.wav")
    return ticket.number


def test_ticket_progress_by_keys_read_back_digit_by_digit(hotline, library, tmp_path: Path) -> None:
    store = TicketStore(f"sqlite:///{tmp_path}/ivr.db")
    number = _seed_ticket(store)
    call = run_call(hotline, library, f"keys:3; keys:{number}#; keys:1", tmp_path, store=store,
                    lookup=store_lookup(store))
    assert call.record.path == ["welcome", "main_menu=progress", "progress", "progress_lookup=found", "goodbye"]
    assert call.record.vars["ticket_number"] == number
    readback = library.compose(["progress_readback", Digits(number), "confirm_digits"])
    assert count(call.played, readback, probe_ms=ms(readback) - 20) == 1
    status = library.compose(["ticket_status_intro", Digits(number), "ticket_status_open"])
    assert count(call.played, status, probe_ms=ms(status) - 20) == 1


def test_ticket_number_read_back_in_groups_without_clicks(hotline, library, tmp_path: Path) -> None:
    """What the caller of a real flow hears: 您输入的工单号是 | 2026 1206 001 | 确认请按1: a clause pause, a pause
    between groups, a short one between the digits of a group, every join starting and ending at silence."""
    store = TicketStore(f"sqlite:///{tmp_path}/ivr.db")
    number = _seed_ticket(store)
    call = run_call(hotline, library, f"keys:3; keys:{number}#; keys:1", tmp_path, store=store,
                    lookup=store_lookup(store))
    readback = library.compose(["progress_readback", Digits(number), "confirm_digits"])
    start = call.played.find(readback)
    assert start >= 0 and len(number) == 11
    heard = np.frombuffer(call.played[start: start + len(readback)], dtype="<i2").astype(np.int32)
    zero = np.concatenate([[0], (heard == 0).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(zero))
    pauses = [(a, b) for a, b in zip(edges[::2], edges[1::2]) if b - a >= 8 * 40]  # 40 ms and more
    d, g, w = DIGIT_GAP_MS, GROUP_GAP_MS, WORD_GAP_MS
    expected = [w, d, d, d, g, d, d, d, g, d, d, w]  # 2026 1206 001
    assert len(pauses) == len(expected)
    for (a, b), gap in zip(pauses, expected):
        assert 8 * gap <= b - a <= 8 * (gap + 2 * ONSET_MS)  # the faint, faded ends a piece keeps round to 0 too
        # sound fades out into each pause and in after it
        assert np.abs(heard[a - 2: a]).max() <= 64 and np.abs(heard[b: b + 2]).max() <= 64


def test_ticket_progress_re_enter_and_not_found(hotline, library, tmp_path: Path) -> None:
    lookups: list[str] = []

    def lookup(n: str) -> str | None:
        lookups.append(n)
        return None

    call = run_call(hotline, library, "keys:3; keys:20261128009#; keys:2; keys:20261128001#; keys:1; keys:0",
                    tmp_path, lookup=lookup)
    assert lookups == ["20261128001"]
    assert call.record.path == ["welcome", "main_menu=progress", "progress", "progress_lookup=not_found",
                                "progress_not_found=agent", "general_agent"]


def test_too_few_digits_is_a_no_match_then_a_person(hotline, library, tmp_path: Path) -> None:
    call = run_call(hotline, library, "keys:3; keys:123#; keys:45#; keys:6#", tmp_path, lookup=lambda n: None)
    assert call.record.path[1:4] == ["main_menu=progress", "progress", "elderly_menu"]
    assert count(call.played, library.get("progress_no_match")) == 2


def test_spoken_ticket_number_n02(hotline, library, fake_engine, tmp_path: Path) -> None:
    call = run_call(hotline, library, f"keys:3; say:{fixture('n02')}; wait:1500; say:{fixture('m08')}", tmp_path,
                    engine=fake_engine, lookup=lambda n: "dispatched" if n == "20261128001" else None)
    assert call.record.vars["ticket_number"] == "20261128001"
    assert call.record.path[-2:] == ["progress_lookup=found", "goodbye"]
    assert count(call.played, library.piece("ticket_status_dispatched"), probe_ms=300) == 1  # joined after the number


def test_spoken_no_at_the_readback_asks_again(hotline, library, fake_engine, tmp_path: Path) -> None:
    call = run_call(hotline, library, f"keys:3; say:{fixture('n02')}; wait:1500; say:{fixture('m09')}; wait:1500; keys:20261128002#; "
                    "keys:1", tmp_path, engine=fake_engine, lookup=lambda n: "closed")
    assert call.record.vars["ticket_number"] == "20261128002"
    assert count(call.played, library.get("progress_intro")) == 2


def test_frames_are_whole(hotline, library, tmp_path: Path) -> None:
    call = run_call(hotline, library, "keys:0", tmp_path)
    assert len(call.played) % (16 * FRAME_MS) == 0


def test_speech_over_the_welcome_answers_the_menu(hotline, library, fake_engine, tmp_path: Path) -> None:
    call = run_call(hotline, library, f"!wait:1000; !say:{fixture('m01')}; wait:1500; say:{fixture('c08')}",
                    tmp_path, engine=fake_engine)
    assert call.record.path[:3] == ["welcome", "main_menu=complaint", "complaint"]
    assert call.record.heard[0]["text"] == "投诉"
    assert count(call.played, library.get("main_menu"), probe_ms=200) == 0  # the caller never had to hear it


def test_each_node_reached_is_reported_with_the_callers_flags(hotline, library, tmp_path: Path) -> None:
    seen: list[tuple[str, frozenset[str]]] = []
    channel = FileChannel(parse_script("keys:0"), CallInfo(call_id="t-2", caller="13800138000"))
    runner = FlowRunner(hotline, CallIO(channel, None), library,
                        StoreSink(TicketStore(f"sqlite:///{tmp_path}/ivr.db"), tmp_path / "rec"),
                        on_node=lambda nid, flags: seen.append((nid, flags)))
    asyncio.run(runner.run())
    assert [n for n, _ in seen] == ["welcome", "main_menu", "elderly_agent"]
    assert "elderly" not in seen[1][1] and "elderly" in seen[2][1]
