"""`ivr serve` with its queue, end to end over SIPp: two operators saturated, a caller told position and wait, an
elderly caller overtaking, and a callback booked by keys and dialled back to a SIPp citizen when an operator frees;
callers put through by REFER, or bridged when their phone declines it."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from pgkit import fresh_database
from queuekit import ELDERLY, GENERAL, caller, key, served
from sippkit import SIPP, answer, notify_refer, pause, recv, run_sipp, serving

from ivr.config import AgentConfig, Settings
from ivr.hotline.queueing import QueueOptions
from ivr.queue import QueuePolicy
from ivr.queue.callbacks import CallbackStore, queue_url
from ivr.queue.desk import DeskPolicy
from ivr.queue.directory import AgentDirectory
from ivr.queue.model import AgentState

pytestmark = [pytest.mark.sipp, pytest.mark.slow,
              pytest.mark.skipif(SIPP is None or shutil.which("sipp") is None, reason="sipp is not installed")]

HERE = Path(__file__).resolve().parent
HOLD_MS = 12_000  # how long an operator talks


Caller = Callable[[str, float, str], Awaitable[tuple[int, str]]]


@contextlib.asynccontextmanager
async def hotline(settings: Settings, options: QueueOptions, tmp_path: Path) -> AsyncIterator[Caller]:
    """`ivr serve` (no console) with the queue `options`; yields `call(name, delay_s, scenario)`, which runs a
    SIPp caller against it in tmp_path/name after the delay. The server stops (draining) on leaving."""
    async with serving(settings, options) as server:
        async def call(name: str, delay: float, xml: str) -> tuple[int, str]:
            await asyncio.sleep(delay)
            (tmp_path / name).mkdir()
            return await run_sipp(xml, tmp_path / name, server.port, timeout_s=150)

        yield call



@pytest.mark.parametrize("backend", ["in-process", "postgresql"])
def test_queue_through_serve(settings: Settings, tmp_path: Path, sipp, caplog: pytest.LogCaptureFixture,
                             backend: str, request: pytest.FixtureRequest) -> None:
    caplog.set_level(logging.INFO)
    ops = [sipp(["-sf", str(HERE / "sipp" / "answer_hold_bye.xml"), "-d", str(HOLD_MS)], 10) for _ in range(2)]
    citizen, citizen_port = sipp(["-sf", str(HERE / "sipp" / "citizen_presses_1.xml")], 1)
    settings = served(settings, tmp_path)
    if backend == "postgresql":  # the centre's queue, callbacks and operators in PostgreSQL
        settings = dataclasses.replace(settings, queue_database_url=fresh_database(request.getfixturevalue("pg")))
    options = QueueOptions(
        agents=tuple(AgentConfig(f"op{i}", f"Operator {i}", f"sip:op{i}@127.0.0.1:{port}", ("general", "elderly"))
                     for i, (_, port) in enumerate(ops, 1)),
        trunk=("127.0.0.1", citizen_port), policy=QueuePolicy(announce_every_s=8.0, offer_callback_over_s=3600.0))
    callers = {
        "a": (0.0, caller("13900000001", *ELDERLY)),
        "b": (0.0, caller("13900000002", *ELDERLY)),
        "c": (2.0, caller("13900000003", *GENERAL)),  # waits: hears position and wait
        "e": (3.0, caller("13900000005", *GENERAL, pause(12_000), key("1", 2000), key("1", 2000), key("1"))),
        "d": (5.0, caller("13900000004", *ELDERLY)),  # comes after c, is served before c
    }

    async def main() -> None:
        async with hotline(settings, options, tmp_path) as call:
            results = await asyncio.gather(*(call(n, d, x) for n, (d, x) in callers.items()))
            for name, (rc, out) in zip(callers, results):
                assert rc == 0, f"caller {name}: {out}"
            store = CallbackStore(queue_url(settings))
            for _ in range(600):  # the callback is dialled when an operator frees
                if citizen.poll() is not None and not store.outstanding():
                    break
                await asyncio.sleep(0.1)

    asyncio.run(main())
    assert citizen.poll() == 0  # the citizen was called back and the call went through
    messages = [r.getMessage() for r in caplog.records]
    who = {}  # SIP call id -> caller (the last digit of the masked number)
    for m in messages:
        if (found := re.match(r"call (\S+) from \d+\*+000(\d): flow", m)):
            who[found.group(1)] = "_abcde"[int(found.group(2))]
    connects = [who[m.split()[1].rstrip(":")] for m in messages if "queue_connect" in m]
    assert sorted(connects[:2]) == ["a", "b"] and connects[2:] == ["d", "c"]  # d overtook c
    announced = [m for m in messages if "queue_announce" in m and who.get(m.split()[1].rstrip(":")) == "c"]
    assert len(announced) >= 2 and "position=1" in announced[0]
    [cb] = [c for c in [CallbackStore(queue_url(settings)).get(1)]]
    assert (cb.number, cb.status, cb.attempts) == ("13900000005", "done", 1)
    assert any(m.startswith("callback 1: citizen put through") for m in messages)
    status = json.loads((settings.data_dir / "queue-status.json").read_text())
    assert status["answered"] == 4 and status["callbacks_booked"] == 1 and status["abandoned"] == 0


def test_refer_through_serve_and_a_phone_that_declines_it_is_bridged(settings: Settings, tmp_path: Path, sipp,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    operator, port = sipp(["-sf", str(HERE / "sipp" / "answer_hold_bye.xml"), "-d", "3000"], 1)  # one INVITE only
    settings = served(settings, tmp_path)
    op1 = AgentConfig("op1", "Operator 1", f"sip:op1@127.0.0.1:{port}", ("general", "elderly"))
    options = QueueOptions(agents=(op1,), desk=DeskPolicy(transfer="refer", refer_busy_s=600.0))
    takes_refer = caller("13900000001", *ELDERLY, recv("REFER"), answer("202 Accepted"), notify_refer(2), recv(200))
    declines = caller("13900000002", *GENERAL, recv("REFER"), answer("603 Declined"))
    directory = AgentDirectory(queue_url(settings), (op1,))

    async def main() -> list[tuple[int, str]]:
        async with hotline(settings, options, tmp_path) as call:
            first = asyncio.create_task(call("a", 0.0, takes_refer))
            second = asyncio.create_task(call("b", 2.0, declines))  # waits: op1 is on a call only they see end
            a = await first
            for _ in range(100):  # the server has seen op1 go on the referred call
                if directory.get("op1").state == AgentState.ON_CALL:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(3.0)
            assert not second.done() and directory.get("op1").state == AgentState.ON_CALL
            directory.set_state("op1", "available", "op1")  # the operator says the transferred call is over
            b = await second
        return [a, b]

    for name, (rc, out) in zip("ab", asyncio.run(main())):
        assert rc == 0, f"caller {name}: {out}"
    operator.wait(timeout=10)
    assert operator.returncode == 0  # the declining caller's operator leg was placed by us, answered and bridged
    messages = [r.getMessage() for r in caplog.records]
    assert sum("queue_connect" in m for m in messages) == 2
    assert sum("queue_referred agent=op1" in m for m in messages) == 1
    assert sum("REFER refused with 603" in m and "bridging instead" in m for m in messages) == 1
    log = next(tmp_path.glob(f"msgs{port}.log")).read_text()
    assert log.count("INVITE sip:op1@127.0.0.1") == 1
    status = json.loads((settings.data_dir / "queue-status.json").read_text())
    assert status["answered"] == 2 and status["abandoned"] == 0
