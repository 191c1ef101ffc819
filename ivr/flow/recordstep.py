"""The flow's record node: the caller leaves a message, which becomes a ticket with its recording and live transcript.

The message is a priority speech step (its live transcript decides whether it is urgent). Words that only come close
to an emergency are put back to the caller ("您是说有煤气泄漏吗？"): yes, a person, or no clear answer make the call
urgent. A message that could not be saved (a full disk) is said to be so and the caller is offered a person once;
when no person can be offered now (out of hours, or the person was already tried) the caller is asked to call again
later, never to leave the message once more.
"""
from __future__ import annotations

import logging

from ivr.call import NotSavedHeard, RecordingHeard
from ivr.channel.base import CallerHungUp
from ivr.flow.dialogue import Dialogue
from ivr.flow.model import Branch, Goto, Record, Transfer
from ivr.media.callio import RecordEnd
from prompts.library import beep

__all__ = ["RecordStep", "NOT_SAVED", "URGENT_CHECK_MS"]

log = logging.getLogger(__name__)

NOT_SAVED = "message_not_saved"  # the call's flag once a message could not be saved
URGENT_CHECK_MS = 6000  # time to answer "您是说有煤气泄漏吗？"


class RecordStep:
    """One visit of a record node; `run()` gives the next node, or None once the call is ended."""

    def __init__(self, node: Record, runner: Dialogue) -> None:
        self.node, self.r = node, runner

    async def run(self) -> str | None:
        node, r, call = self.node, self.r, self.r.call
        if NOT_SAVED in call.flags:  # saving failed earlier in this call, and a person could not take it
            return await self._not_saved()
        await r._play(node.prompt, interruptible=False)
        if node.beep:
            await r.io.play(beep(), interruptible=False)
        rec = r.tickets.open(call, node.ticket_kind)
        if rec.ticket:
            call.tickets.append(rec.ticket)
        result = None
        if rec.writer is not None:
            with r.io.speech_step(priority=True):  # a complaint's live transcript decides whether it is urgent
                result = await r.io.record(rec.writer, max_ms=node.max_ms, end_silence_ms=node.end_silence_ms,
                                           no_input_ms=node.no_input_ms)
            call.heard.append(RecordingHeard(node=node.id, kind="recording", ms=result.audio_ms,
                                             end=result.reason.value))
        saved = r.tickets.finish(rec, call, result)
        if saved.urgent:
            call.flags.add("urgent")  # the flow branches on it: a person at once, ahead of the queue
            log.warning("call %s: ticket %s is urgent; putting the caller through", call.call_id, rec.ticket)
        if result is not None and result.reason == RecordEnd.HANGUP:
            raise CallerHungUp(call.call_id)
        answer = await self._urgent_check(saved.ask) if saved.ask and not saved.urgent else "no"
        if answer != "no":  # yes, a person, or no clear answer: a person checks
            call.flags.add("urgent")
            log.warning("call %s: ticket %s may be urgent (%s, answer %s); putting the caller through",
                        call.call_id, rec.ticket, saved.ask, answer)
            if answer == "yes" and rec.ticket:
                r.tickets.confirmed_urgent(rec.ticket, call, saved.ask)
        if saved.problem:
            call.heard.append(NotSavedHeard(node=node.id, kind="not_saved", problem=saved.problem))
            return await self._not_saved()
        return node.next

    async def _urgent_check(self, hazard: str) -> str:
        """Ask a caller whose words only came close to an emergency whether it is one: "yes", "no", "agent" or
        "no_answer"."""
        prompt = f"urgent_check_{hazard}"
        answer = await self.r._yes_no(self.node.id, [prompt if prompt in self.r.prompts.catalogue else "urgent_check"],
                                      URGENT_CHECK_MS, retries=1) or "no_answer"
        self.r.call.vars["urgent_check"] = f"{hazard}={answer}"
        return answer

    async def _not_saved(self) -> str | None:
        call = self.r.call
        if NOT_SAVED not in call.flags and self._person_now():
            call.flags.add(NOT_SAVED)
            log.warning("call %s: the message at %s was not saved; offering a person", call.call_id, self.node.id)
            await self.r._play("message_not_saved", interruptible=False)
            return self.r.flow.agent_node
        log.warning("call %s: the message at %s cannot be saved; asking the caller to call again",
                    call.call_id, self.node.id)
        await self.r._play("message_not_saved_later", interruptible=False)
        await self.r.io.channel.hangup()
        return None

    def _person_now(self) -> bool:
        """Whether the flow's `agent_node` leads to a person now, through its branches (the business hours)."""
        nodes = self.r.flow.nodes
        node = nodes.get(self.r.flow.agent_node)
        for _ in nodes:  # a loop of branches reaches no one
            if not isinstance(node, (Branch, Goto)):
                break
            node = nodes.get(self.r._branch(node) if isinstance(node, Branch) else node.next)
        return isinstance(node, Transfer)
