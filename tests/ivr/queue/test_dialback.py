"""CallbackDialler over simulated phones (FileChannels in virtual time): the citizen confirms or not, the operator
answers or not, the citizen hangs up while the operator's phone rings."""
from __future__ import annotations

import asyncio
from pathlib import Path

from desk_harness import Dialled, library, relay

from ivr.channel.base import CallInfo
from ivr.channel.file import FileChannel, parse_script
from ivr.queue.callbacks import Callback
from ivr.queue.dialback import CallbackDialler
from ivr.queue.model import Connect, Priority
from ivr.queue.ticker import DialbackResult

OPERATOR = "sip:op1@127.0.0.1:5999"
CALLBACK = Callback(7, "20261129001", "13800138000", "general", int(Priority.NORMAL), 0.0, 0.0, "pending", 0, 0.0, "")


class Phones:
    """place_call stand-in: first the citizen's phone (answers, runs `citizen`), then the operator's, which rings
    for `ring_ms` of the citizen's call time and then gives `operator` ("answered": a FileChannel that talks 2 s)."""

    def __init__(self, citizen: str, operator: str = "answered", ring_ms: int = 1000) -> None:
        self.citizen = FileChannel(parse_script(citizen), CallInfo("citizen", "13800138000"))
        self.operator, self.ring_ms = operator, ring_ms
        self.calls: list[tuple[str, tuple[str, int]]] = []
        self.operator_leg: FileChannel | None = None

    async def __call__(self, uri: str, proxy: tuple[str, int]) -> Dialled:
        self.calls.append((uri, proxy))
        if len(self.calls) == 1:
            return Dialled("answered", 200, "citizen", self.citizen)
        until = self.citizen._t + self.ring_ms
        while self.citizen._t < until and not self.citizen.ended:
            await asyncio.sleep(0)
        if self.operator != "answered":
            return Dialled(self.operator, 480, "op", None)
        self.operator_leg = FileChannel(parse_script("!wait:2000; !hangup"), CallInfo("op", "op"))
        return Dialled("answered", 200, "op", self.operator_leg)


def dial(tmp_path: Path, phones: Phones) -> DialbackResult:
    dialler = CallbackDialler(library(tmp_path), place_call=phones, bridge=relay, trunk=("127.0.0.1", 5070))
    event = Connect("cb-7", "op1", OPERATOR, 30.0, True, CALLBACK.ticket)
    return asyncio.run(dialler(event, CALLBACK))


def test_citizen_presses_1_and_is_bridged_to_the_operator(tmp_path: Path) -> None:
    phones = Phones("!wait:1500; !keys:1; !wait:60000")
    assert dial(tmp_path, phones) == DialbackResult("answered", operator="talked")
    assert phones.calls == [("sip:13800138000@127.0.0.1:5070", ("127.0.0.1", 5070)), (OPERATOR, ("127.0.0.1", 5999))]
    assert phones.citizen.hung_up_by_system  # the operator hung up after 2 s, so the citizen's leg was ended


def test_citizen_who_never_presses_1_is_told_goodbye_and_no_operator_is_rung(tmp_path: Path) -> None:
    phones = Phones("!wait:60000")
    assert dial(tmp_path, phones) == DialbackResult("no_response")
    assert len(phones.calls) == 1 and phones.citizen.hung_up_by_system


def test_operator_not_answering_is_reported_missed(tmp_path: Path) -> None:
    phones = Phones("!wait:1500; !keys:1; !wait:60000", operator="no_answer")
    assert dial(tmp_path, phones) == DialbackResult("operator_missed", operator="missed")
    assert phones.citizen.hung_up_by_system


def test_citizen_hanging_up_while_the_operator_rings(tmp_path: Path) -> None:
    # the citizen presses 1 and hangs up 2 s later; the operator answers after 10 s and is hung up at once
    phones = Phones("!wait:1500; !keys:1; !wait:2000; !hangup", ring_ms=10_000)
    assert dial(tmp_path, phones) == DialbackResult("no_response", operator="talked")
    assert phones.operator_leg is not None and phones.operator_leg.hung_up_by_system
    phones = Phones("!wait:1500; !keys:1; !wait:2000; !hangup", operator="busy", ring_ms=10_000)
    assert dial(tmp_path / "2", phones) == DialbackResult("no_response")
