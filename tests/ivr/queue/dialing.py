"""Test helper `dial()`: place an outbound call, hold it for `hold_s` and hang up (a citizen or operator leg without
media, for tests of the queue and of outbound calls).

A thin wrapper over `ivr.sip.uac.place_call` for tests that only need the outcome: answered (2xx), busy (486, 600,
603), no_answer (408, 480, 487 or time-out) or failed.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ivr.sip.uac import place_call

__all__ = ["DialResult", "dial"]


@dataclass(frozen=True)
class DialResult:
    outcome: str  # answered | busy | no_answer | failed
    status: int | None
    call_id: str


async def dial(uri: str, proxy: tuple[str, int], local_host: str = "127.0.0.1", caller: str = "12345",
               ring_timeout_s: float = 30.0, hold_s: float = 0.0, t1: float = 0.5) -> DialResult:
    """Call `uri` through `proxy`; an answered call is held for `hold_s`, then ended with BYE."""
    result = await place_call(uri, proxy, local_host=local_host, caller_id=caller, ring_timeout_s=ring_timeout_s,
                              t1=t1)
    if result.channel is not None:
        try:
            if hold_s:
                await asyncio.sleep(hold_s)
        finally:
            await result.channel.hangup()
    return DialResult(result.outcome, result.status, result.call_id)
