"""The hotline service's start-up: recognisers warmed on the prompts for a server, recycled by the setting."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from asr.engine import VoskEngine
from ivr.config import Settings
from ivr.hotline.service import HotlineService


def test_a_server_warms_its_recognisers_on_the_prompts(settings: Settings, ko_model_dir: Path) -> None:
    settings = dataclasses.replace(settings, vosk_model=str(ko_model_dir), asr_warm=2, asr_recycle_after_s=900.0)
    service = HotlineService.from_settings(settings)
    engine = service.engine
    assert isinstance(engine, VoskEngine) and engine.recycle_after_s == 900.0
    thread = service.warm()
    assert thread is not None
    thread.join()  # a low-priority thread: however long a loaded machine takes
    warmed = engine._pools[None][-2:]
    assert len(warmed) == 2 and all(29.0 < r.decoded_s <= 30.0 for r in warmed)  # 30 s of prompt audio each


def test_simulate_and_call_do_not_warm(settings: Settings, ko_model_dir: Path) -> None:
    service = HotlineService.from_settings(dataclasses.replace(settings, vosk_model=str(ko_model_dir), asr_warm=0))
    engine = service.engine
    assert isinstance(engine, VoskEngine)
    assert service.warm() is None and engine.pooled() == 0  # asr_warm = 0: nothing
