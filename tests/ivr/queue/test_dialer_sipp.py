"""Callbacks dialled through the real UAC against SIPp callees (answer, busy, ring without answer)."""
import asyncio
import shutil
from pathlib import Path

import pytest

from dialing import dial
from ivr.queue.callbacks import CallbackStore, RetryPolicy
from ivr.sip.uac import outcome_of

HERE = Path(__file__).parent / "sipp"
pytestmark = [pytest.mark.sipp, pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed")]


def test_outcome_mapping():
    assert [outcome_of(s) for s in (200, 486, 603, 480, 487, None, 404)] == [
        "answered", "busy", "busy", "no_answer", "no_answer", "no_answer", "failed"]


def test_callbacks_dialled_in_order_against_sipp_uas(tmp_path, sipp):
    store = CallbackStore(f"sqlite:///{tmp_path / 'cb.db'}")
    ids = [store.book(f"1390000{i:04d}", "general", 2, float(i), float(i), ticket=f"T-{i}") for i in range(3)]
    proc, port = sipp(["-sn", "uas"], 3)

    async def run() -> list[str]:
        await asyncio.sleep(0.3)  # sipp binding
        got = []
        while (cb := store.claim_next("w")) is not None:
            res = await dial(f"sip:{cb.number}@127.0.0.1:{port}", ("127.0.0.1", port), hold_s=0.1)
            store.finish(cb.id, "w", res.outcome)
            got.append(f"{cb.id}:{res.outcome}")
        return got

    assert asyncio.run(run()) == [f"{i}:answered" for i in ids]
    assert proc.wait() == 0  # sipp saw 3 successful calls
    log = (tmp_path / f"msgs{port}.log").read_text()
    assert [n for n in ("13900000000", "13900000001", "13900000002") if f"INVITE sip:{n}@" in log] == [
        "13900000000", "13900000001", "13900000002"]
    assert log.index("INVITE sip:13900000000@") < log.index("INVITE sip:13900000001@") < log.index(
        "INVITE sip:13900000002@")
    assert store.counts()["done"] == 3


def test_busy_then_no_answer_retried_then_failed(tmp_path, sipp):
    clock = [1000.0]
    store = CallbackStore(f"sqlite:///{tmp_path / 'cb.db'}", clock=lambda: clock[0],
                          policy=RetryPolicy(max_attempts=2, backoff_s=(60.0,)))
    cb = store.book("13911112222", "general", 2, 0, 0, ticket="T-42")
    busy, bport = sipp(["-sf", str(HERE / "busy.xml")], 1)
    ring, rport = sipp(["-sf", str(HERE / "noanswer.xml")], 1)

    async def attempt(port: int) -> str:
        await asyncio.sleep(0.3)
        assert store.claim(cb, "w")
        res = await dial(f"sip:13911112222@127.0.0.1:{port}", ("127.0.0.1", port), ring_timeout_s=1.0)
        return store.finish(cb, "w", res.outcome).status + ":" + res.outcome

    assert asyncio.run(attempt(bport)) == "pending:busy"
    clock[0] += 60
    assert asyncio.run(attempt(rport)) == "failed:no_answer"
    assert busy.wait() == 0 and ring.wait() == 0
    final = store.get(cb)
    assert (final.attempts, final.last_result, final.ticket) == (2, "no_answer", "T-42")
