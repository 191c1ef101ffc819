"""The hotline service's start-up: recognisers warmed on the prompts for a server, recycled by the setting."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path

import pytest

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


NEW_ENTRY = """
  - id: ht_test_new
    title: 测试用的新条目
    questions: [测试用的新条目怎么办, 测试用的新条目在哪里办, 我想问问测试用的新条目]
    synonyms: [测试条目]
    spoken: 这是测试用的回答。
    text: 测试用的说明。
    source: {title: 测试用的来源}
    status: unverified
"""


def test_a_flow_edited_later_is_checked_against_the_knowledge_base_as_it_is_then(settings: Settings,
                                                                                 tmp_path: Path) -> None:
    """The shipped flow's consult node offers entries by key: an edit naming an entry the knowledge base lacks is
    refused (the last good flow serves), and accepted once the entry is added to the knowledge base."""
    import shutil

    repo = Path(__file__).resolve().parents[3]
    kb_dir, flow = tmp_path / "kb", tmp_path / "hotline.yaml"
    shutil.copytree(repo / "kb", kb_dir, ignore=shutil.ignore_patterns(".history", "eval"))
    shutil.copy(repo / "flows" / "hotline.yaml", flow)
    service = HotlineService.from_settings(dataclasses.replace(settings, kb_dir=kb_dir, flow=flow), load_engine=False)
    first = service.flows.current()
    flow.write_text(flow.read_text(encoding="utf-8").replace("top: [ss_card_lost,", "top: [ht_test_new,"),
                    encoding="utf-8")
    assert service.flows.current() is first
    assert "`top` names entry 'ht_test_new', which the knowledge base does not have" in service.flows.last_error
    with open(kb_dir / "heating.yaml", "a", encoding="utf-8") as f:
        f.write(NEW_ENTRY)
    flow.write_text(flow.read_text(encoding="utf-8") + "\n", encoding="utf-8")  # saved again
    edited = service.flows.current()
    assert edited is not first and edited.nodes["consult"].top[0] == "ht_test_new"  # type: ignore[attr-defined]


HOURS_FLOW = """\
name: hours
start: check
business_hours: {days: [1, 2, 3, 4, 5, 6, 7], open: "09:00", close: "17:00"}
nodes:
  check:
    type: branch
    cases: [{when: "!business_hours", next: closed}]
    default: open
  open: {type: hangup, prompt: goodbye}
  closed: {type: hangup, prompt: after_hours}
"""


def zone_at(hour: int) -> str:
    """A fixed-offset time zone where it is now `hour` o'clock (Etc/GMT-8 is UTC+8)."""
    offset = (hour - datetime.now(timezone.utc).hour) % 24
    offset = offset - 24 if offset > 12 else offset
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/UTC"


@pytest.mark.parametrize(("hour", "path"), [(12, ["open"]), (3, ["closed"])])
def test_business_hours_are_the_hotlines_local_time_not_the_machines(settings: Settings, tmp_path: Path, hour: int,
                                                                     path: list[str]) -> None:
    """A node on a machine kept in UTC (a container, a cloud VM) still opens at 09:00 hotline time."""
    import asyncio

    from ivr.channel.file import FileChannel, parse_script

    flow = tmp_path / "hours.yaml"
    flow.write_text(HOURS_FLOW, encoding="utf-8")
    service = HotlineService.from_settings(dataclasses.replace(settings, flow=flow, timezone=zone_at(hour)),
                                           load_engine=False)
    record = asyncio.run(service.handle_call(FileChannel(parse_script(""))))
    assert record.path == path
