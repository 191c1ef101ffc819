"""A waiting caller whose callbacks cannot be stored (the callbacks database's disk is full, a real small tmpfs): no
callback is offered, and a booking that fails anyway keeps the caller's place for a person."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from desk_harness import free_op1_after, kinds, run, scene

from ivr.channel.base import TransferResult
from ivr.queue.callbacks import CallbackStore


def test_no_callback_is_offered_while_its_store_has_no_room(tmp_path: Path, small_disks,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    disk = small_disks.mount(tmp_path / "data", "4m")
    s = scene(disk, "!wait:1000; !keys:1; keys:1; keys:1; wait:30000")  # presses 1 for a callback, then 1 and 1
    small_disks.fill(disk)
    assert run(s, each_tick=free_op1_after(15.0)) == TransferResult(True, "general", "connected")
    assert [k for k in kinds(s) if k != "queue_announce"] == ["queue_no_callback", "queue_connect"]  # no offer
    assert s.store.outstanding() == [] and s.queue.stats.callbacks_booked == 0
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name == "ivr.queue.desk"]
    assert warned == [f"call c1: no callback offered: {disk / 'callbacks.db'} has no room"]


def test_a_booking_that_fails_keeps_the_callers_place_for_a_person(tmp_path: Path, small_disks,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    disk = small_disks.mount(tmp_path / "data", "4m")
    s = scene(disk, "!wait:1000; !keys:1; keys:1; keys:1; wait:30000")
    s.store.room_bytes = 0  # the disk fills between the check and the booking
    small_disks.fill(disk)
    assert run(s, each_tick=free_op1_after(25.0)) == TransferResult(True, "general", "connected")
    assert [k for k in kinds(s) if k != "queue_announce"] == ["queue_offer", "queue_callback_failed", "queue_connect"]
    assert not any(r.exc_info for r in caplog.records)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        f"call c1: callback not booked ({disk / 'callbacks.db'}: disk full); the caller keeps their place"]
    assert CallbackStore(f"sqlite:///{disk / 'callbacks.db'}").outstanding() == []
    assert s.queue.stats.callbacks_booked == 0 and s.queue.stats.abandoned == 0
