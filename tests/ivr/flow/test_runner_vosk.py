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


def test_spoken_choice_goes_to_retry_then_keys(hotline, library, vosk_engine, tmp_path: Path) -> None:
    call = run_call(hotline, library, f"say:{fixture('m01')}; wait:1500; keys:2; keys:1; keys:2", tmp_path,
                    engine=vosk_engine)
    first = call.record.heard[0]
    assert first["kind"] == "speech" and first["node"] == "main_menu"  # endpointed and decoded
    assert call.record.path[:3] == ["welcome", "main_menu=consult", "consult_menu=social_security"]
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
