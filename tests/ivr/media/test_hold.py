"""legs.ring: holding a caller while an operator's phone rings, and what happens to the operator's call when the
caller hangs up or the caller's task is cancelled (the server stopping)."""
from __future__ import annotations

import asyncio

import pytest

from desk_harness import Dialled

from ivr.channel.base import CallInfo
from ivr.channel.file import FileChannel, parse_script
from ivr.media.callio import CallIO
from ivr.media.hold import HungUpRinging, ring


def caller(script: str = "!wait:60000") -> tuple[FileChannel, CallIO]:
    channel = FileChannel(parse_script(script), CallInfo("c1", "13800138000"))
    return channel, CallIO(channel, None)


async def answers_after(channel: FileChannel, ms: int, operator: FileChannel) -> Dialled:
    until = channel._t + ms
    while channel._t < until and not channel.ended:
        await asyncio.sleep(0)
    return Dialled("answered", 200, "op", operator)


def test_the_caller_hears_the_prompt_then_hold_music_until_the_operator_answers() -> None:
    channel, io = caller()
    operator = FileChannel(parse_script("!wait:60000"), CallInfo("op", "op"))
    result = asyncio.run(ring(io, answers_after(channel, 3000, operator), prompt=b"\x01\x00" * 8000))
    assert result.channel is operator and not operator.hung_up_by_system
    assert 3000 <= channel._t <= 4200 and bytes(channel.played[:16_000]) == b"\x01\x00" * 8000


def test_caller_hanging_up_while_it_rings_hangs_up_an_operator_who_answers() -> None:
    channel, io = caller("!wait:1000; !hangup")
    operator = FileChannel(parse_script("!wait:60000"), CallInfo("op", "op"))
    with pytest.raises(HungUpRinging) as info:
        asyncio.run(ring(io, answers_after(channel, 5000, operator)))
    assert info.value.answered and operator.hung_up_by_system


def test_cancelling_the_caller_cancels_the_ringing_and_hangs_up_an_answer_that_crossed() -> None:
    async def main() -> tuple[bool, FileChannel]:
        channel, io = caller()
        rang_out = asyncio.Event()
        gave_up = False

        async def rings_forever() -> Dialled:
            nonlocal gave_up
            try:
                rang_out.set()
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                gave_up = True
                raise
            raise AssertionError("unreachable")

        holding = asyncio.ensure_future(ring(io, rings_forever()))
        await rang_out.wait()
        holding.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holding
        await asyncio.sleep(0)

        operator = FileChannel(parse_script("!wait:60000"), CallInfo("op", "op"))
        answered: asyncio.Future[Dialled] = asyncio.get_running_loop().create_future()
        holding = asyncio.ensure_future(ring(io, answered))
        await asyncio.sleep(0)
        answered.set_result(Dialled("answered", 200, "op", operator))
        holding.cancel()  # cancelled in the same turn as the answer
        with pytest.raises(asyncio.CancelledError):
            await holding
        for _ in range(10):
            await asyncio.sleep(0)
        return gave_up, operator

    gave_up, operator = asyncio.run(main())
    assert gave_up and operator.hung_up_by_system
