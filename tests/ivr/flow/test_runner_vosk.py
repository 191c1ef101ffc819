"""The same calls with the real (Korean) Vosk model: the pipeline survives real decoding of Mandarin speech.

No Mandarin model can be fetched here, so spoken choices are not expected to be understood: they must end in
the no-match / retry paths, while keys keep working and every recording is still transcribed into its ticket.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from flow_harness import count, fixture, run_call

from asr.engine import VoskEngine


@pytest.fixture(scope="module")
def vosk_engine(ko_model_dir: Path) -> VoskEngine:
    return VoskEngine(ko_model_dir)


def test_keys_work_and_the_complaint_is_transcribed(hotline, library, vosk_engine, tmp_path: Path) -> None:
    call = run_call(hotline, library, f"keys:1; say:{fixture('c01')}", tmp_path, engine=vosk_engine)
    assert call.record.path[:3] == ["welcome", "main_menu=complaint", "complaint"]
    [ticket] = call.store.list()
    assert ticket.transcript is not None and ticket.transcript.engine == "vosk" and ticket.transcript.words


def test_spoken_choice_goes_to_retry_then_keys(hotline, library, shipped_kb, vosk_engine, tmp_path: Path) -> None:
    call = run_call(hotline, library, f"say:{fixture('m01')}; wait:1500; keys:2; keys:1; keys:2", tmp_path,
                    engine=vosk_engine, kb=shipped_kb)
    first = call.record.heard[0]
    assert first["kind"] == "speech" and first["node"] == "main_menu"  # endpointed and decoded
    assert call.record.path[:3] == ["welcome", "main_menu=consult", "consult=ss_card_lost"]
    assert count(call.played, library.get("main_menu_no_match")) == 1


def test_speech_twice_reaches_the_elderly_path_not_a_hangup(hotline, library, vosk_engine, tmp_path: Path) -> None:
    call = run_call(hotline, library, f"say:{fixture('m04')}; wait:1500; say:{fixture('m07')}; wait:1500; keys:0",
                    tmp_path, engine=vosk_engine)
    assert [h["kind"] for h in call.record.heard[:2]] == ["speech", "speech"]
    assert call.record.path == ["welcome", "main_menu", "elderly_menu=agent", "elderly_agent"]
    assert call.record.outcome == "transferred:elderly"


def test_speech_barge_in_with_real_decoding(hotline, library, vosk_engine, tmp_path: Path) -> None:
    welcome = len(library.get("welcome")) // 16
    menu = len(library.get("main_menu")) // 16
    call = run_call(hotline, library, f"!wait:{welcome + 1500}; !say:{fixture('m02')}; wait:1500; keys:4; "
                    f"say:{fixture('c05')}", tmp_path, engine=vosk_engine)
    assert call.record.heard[0]["kind"] == "speech" and call.record.heard[0]["t_ms"] < welcome + menu
    assert "suggestion" in call.record.path


def test_the_menus_learned_models_run_on_what_the_real_engine_hears(hotline, library, vosk_engine,
                                                                     tmp_path: Path) -> None:
    """The main menu's keywords and its learned model (asr.meaning) read the real engine's transcript; the Korean
    model's text for Mandarin speech names no choice, so the caller gets the no-match prompt and keys still work."""
    from asr import meaning
    from asr.intents import NoMatch
    from ivr.flow.runner import intent_menu

    call = run_call(hotline, library, f"say:{fixture('q01')}; wait:1500; keys:3", tmp_path, engine=vosk_engine)
    first = call.record.heard[0]
    assert first["kind"] == "speech" and first["node"] == "main_menu" and first["text"]
    menu, model = intent_menu(hotline.nodes["main_menu"].options), meaning.family_model("main")
    guess = model.guess(first["text"])
    assert guess.intent in model.intents and 0.0 < guess.score <= 1.0
    assert isinstance(meaning.understand(menu, model, first["text"]), NoMatch)
    assert call.record.path[:3] == ["welcome", "main_menu=progress", "progress"]
    assert count(call.played, library.get("main_menu_no_match")) == 1


def test_a_question_to_the_knowledge_base_through_real_decoding(hotline, library, shipped_kb, vosk_engine,
                                                                  tmp_path: Path) -> None:
    """The question is endpointed, decoded by the real engine and searched; the Korean model's words for Mandarin
    find no sure entry, so no answer is spoken until the caller picks one by key (1: the first offered, or the
    first of the most asked when nothing was found and the question is asked again)."""
    from ivr.flow.model import Kb

    node = hotline.nodes["consult"]
    assert isinstance(node, Kb)
    call = run_call(hotline, library, f"keys:2; say:{fixture('q01')}; wait:1500; keys:1; keys:2", tmp_path,
                    engine=vosk_engine, kb=shipped_kb)
    question = call.record.heard[1]
    assert question["node"] == "consult" and question["kind"] == "speech" and "text" in question
    assert call.record.path[2] in {f"consult={e}" for e in node.top} and call.record.path[-1] == "goodbye"
    chosen = call.record.path[2].removeprefix("consult=")
    assert count(call.played, library.piece(f"kb_{chosen}")) == 1
    assert all(count(call.played, library.piece(f"kbq_{e}")) == 0 for e in node.top)  # nothing put as sure
