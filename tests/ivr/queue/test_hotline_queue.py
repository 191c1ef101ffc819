"""The server's queue (HotlineQueue): callbacks restored at their places, a busy citizen retried then failed with
the ticket noted (SIPp), the queue's gauges on the console's /metrics."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ivr.config import AgentConfig, Settings
from ivr.console.app import create_app
from ivr.hotline.queueing import HotlineQueue, QueueOptions
from ivr.live import LiveState
from ivr.media.bridge import bridge
from ivr.queue import QueuePolicy
from ivr.queue.callbacks import CallbackStore, RetryPolicy, callbacks_url
from ivr.sip.uac import place_call
from ivr.tickets import TicketStore
from prompts import PromptLibrary, load_catalogue

HERE = Path(__file__).resolve().parent


def hotline_queue(settings: Settings, options: QueueOptions) -> tuple[HotlineQueue, TicketStore]:
    prompts = PromptLibrary(load_catalogue(settings.prompts_catalogue), settings.prompts_cache)
    tickets = TicketStore(settings.database_url)
    return HotlineQueue(settings, options, prompts, tickets, LiveState(), place_call=place_call,
                        bridge=bridge), tickets


def test_pending_callbacks_rejoin_the_queue_at_their_places(settings: Settings) -> None:
    store = CallbackStore(callbacks_url(settings.data_dir))
    now = time.time()
    late = store.book("13900000002", "general", 2, now - 10, now - 10)
    early = store.book("13900000001", "general", 2, now - 60, now - 60)
    elderly = store.book("13900000003", "elderly", 1, now - 5, now - 305)
    hq, _ = hotline_queue(settings, QueueOptions())
    assert hq.runner.restore() == 3
    assert [c.call_id for c in hq.queue.queued()] == [f"cb-{early}", f"cb-{late}", f"cb-{elderly}"]
    assert hq.queue.position(f"cb-{late}") == 2
    snap = hq.desk.live.snapshot()  # what the console's live page shows
    assert [(e.caller, e.position, e.priority) for e in snap.queue if e.call_id != f"cb-{elderly}"] == [
        ("13900000001", 1, ""), ("13900000002", 2, "")]
    assert {(c.id, c.position, c.status) for c in snap.callbacks} == {
        (str(early), 1, "waiting"), (str(late), 2, "waiting"), (str(elderly), 1, "waiting")}


def test_a_callback_the_queue_refuses_does_not_keep_the_others_out(settings: Settings,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    store = CallbackStore(callbacks_url(settings.data_dir))
    now = time.time()
    gone = store.book("13900000001", "hotline-2019", 2, now - 60, now - 60)  # a desk since removed from the settings
    kept = store.book("13900000002", "general", 2, now - 10, now - 10)
    hq, _ = hotline_queue(settings, QueueOptions())
    with caplog.at_level(logging.ERROR, "ivr.queue.ticker"):
        assert hq.runner.restore() == 1
        hq.runner.restore()
    assert [c.call_id for c in hq.queue.queued()] == [f"cb-{kept}"]
    assert [r.getMessage() for r in caplog.records] == [
        f"callback {gone} cannot keep its place: unknown agent group 'hotline-2019'"]


@pytest.mark.sipp
@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed")
def test_busy_citizen_retried_then_failed_and_noted_on_the_ticket(settings: Settings, sipp) -> None:
    op, op_port = sipp(["-sn", "uas"], 5)
    citizen, citizen_port = sipp(["-sf", str(HERE / "sipp" / "busy.xml")], 2)
    options = QueueOptions(agents=(AgentConfig("op1", "Operator 1", f"sip:op1@127.0.0.1:{op_port}",
                                               ("general", "elderly")),),
                           trunk=("127.0.0.1", citizen_port), policy=QueuePolicy())
    hq, tickets = hotline_queue(settings, options)
    hq.store.policy = RetryPolicy(max_attempts=2, backoff_s=(0.0,))
    ticket = tickets.create(caller="13900000009", call_id="c9", kind="complaint", menu_path=[], flags=[],
                            recording="x.wav").number
    now = time.time()
    cb_id = hq.store.book("13900000009", "general", 2, now, now, ticket)

    async def main() -> None:
        await asyncio.sleep(0.5)  # SIPp binding
        stop = asyncio.Event()
        task = asyncio.create_task(hq.run(stop))
        while hq.store.get(cb_id).status != "failed":
            await asyncio.sleep(0.1)
        stop.set()
        await task

    asyncio.run(main())
    cb = hq.store.get(cb_id)
    assert (cb.attempts, cb.last_result) == (2, "busy")
    assert citizen.wait() == 0  # both attempts reached the citizen's phone
    assert "回拨失败：2次未接通（busy）" in tickets.get(ticket).note
    assert hq.queue.agents["op1"].state.value == "available"  # never rung for a citizen who did not answer
    assert (settings.data_dir / "queue-status.json").exists()


def test_metrics_served_on_the_console(settings: Settings) -> None:
    hq, tickets = hotline_queue(settings, QueueOptions())
    hq.queue.enqueue("c1", "general")
    hq.metrics.refresh()
    client = TestClient(create_app(settings, store=tickets, metrics=hq.metrics.registry))
    body = client.get("/metrics").text
    assert 'ivr_queue_length{group="general",priority="normal"} 1.0' in body
    assert 'ivr_queue_callbacks{status="pending"} 0.0' in body


def test_queue_options_from_settings(settings: Settings) -> None:
    agent = AgentConfig("op1", "Operator 1", "sip:op1@pbx.local", ("general",))
    s = dataclasses.replace(settings, queue_trunk="trunk.local:5080", queue_agents=(agent,),
                            queue_callback_threshold_s=90.0)
    options = QueueOptions.from_settings(s)
    assert options.trunk == ("trunk.local", 5080) and options.agents == (agent,)
    assert options.policy.offer_callback_over_s == 90.0
    assert QueueOptions.from_settings(settings).trunk is None


def test_callbacks_are_dialled_only_in_calling_hours_and_outside_quiet_hours(settings: Settings) -> None:
    s = dataclasses.replace(settings, queue_callback_hours="09:00-18:30", queue_quiet_hours="12:00-13:30")
    hours = QueueOptions.from_settings(s).hours
    assert hours is not None and (hours.open_h, hours.close_h, hours.quiet_from_h, hours.quiet_to_h) == (
        9.0, 18.5, 12.0, 13.5)
    beijing = 1_764_979_200.0 - 8 * 3600  # 2025-12-06 00:00 in Beijing, as a UTC timestamp
    assert [hours.allowed(beijing + h * 3600) for h in (8.5, 9.0, 12.5, 13.5, 18.4, 18.5)] == [
        False, True, False, True, True, False]
    hq, _ = hotline_queue(settings, QueueOptions.from_settings(s))
    assert hq.store.hours == hours  # the server's store refuses to claim a callback out of hours


@pytest.mark.parametrize("key, value", [("queue_callback_hours", "8-20"), ("queue_quiet_hours", "12:00-25:00")])
def test_bad_calling_hours_name_the_key(settings: Settings, key: str, value: str) -> None:
    from ivr.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match=rf"^{key}: '{value}' is not a span of hours like 08:00-20:00$"):
        load_settings(overrides={"data_dir": settings.data_dir, key: value}, environ={})
