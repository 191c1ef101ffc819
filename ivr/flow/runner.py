"""Runs a flow over a CallIO: menus by key or speech, retries, the elderly path, records, transfers.

The runner never talks to SIP or files: it plays prompts and listens through `ivr.media.callio.CallIO`, and hands
recordings to a `TicketSink`. No caller is ever stuck: after a menu's retries the caller moves on to the elderly
path (the first time) or to `on_fail` / a person, never to a hang-up. Spoken menu choices are matched with
`asr.intents` (homophone tolerant); keys always work. The flow's repeat key (``*``) replays the current prompt
anywhere and its agent key (``0``) reaches `agent_node` from any menu. A caller who asks for it (说慢点 / 大声点) hears
the prompt again slower or louder, and every prompt after it for the rest of the call (the styles `ivr prompts
build` renders); the elderly style is both from the start.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timezone
from functools import lru_cache, partial
from typing import Any

from asr import intents, meaning
from asr.text import numerals_to_digits
from asr.vad import VadConfig
from ivr.call import CallEnd, CallRecord, InputHeard, TicketLookup, TicketSink
from ivr.channel.base import CallerHungUp
from ivr.flow.kbstep import ASKS, DONE_PHRASES, MORE_PHRASES, KbStats, KbStep
from ivr.flow.loader import parse_condition
from ivr.flow.model import (
    CONTROL_KINDS, Answer, Branch, Collect, Confirm, Flow, Goto, Hangup, Kb, Lookup, Menu, Node, Option, Queue,
    Record, Say, Set, Transfer,
)
from ivr.flow.recordstep import RecordStep
from ivr.kb import KnowledgeBase
from ivr.logs import mask_number
from ivr.media.callio import CallIO, Heard, HeardKind
from prompts.compose import Digits, Part
from prompts.library import PromptLibrary

__all__ = ["FlowRunner", "intent_menu"]

log = logging.getLogger(__name__)

MAX_STEPS = 200  # a guard against a flow that loops forever
MAX_REPEATS = 4  # `*` more often than this counts as a failed try
ASK_AGAIN_SLOWER = 2  # a caller who asks this often to hear a menu again gets the elderly style
ELDERLY_TIMEOUT_FACTOR = 1.5
ASKED_STYLE = {"slower": "slow", "louder": "loud"}  # what a caller asked for -> the call's flag
KEYS_ONLY = "keys_only"  # told once when live recognition cannot take the caller's answers


@lru_cache(maxsize=512)
def intent_menu(options: tuple[Option, ...]) -> intents.Menu:
    """The `asr.intents` menu for a flow menu's options (built once per distinct menu)."""
    return intents.Menu(tuple(intents.MenuOption(o.name, o.key or None, o.phrases) for o in options),
                        builtins=ASKS)


_CONFIRM = intents.Menu.confirm()
_ANSWER = intents.Menu((intents.MenuOption("more", "1", MORE_PHRASES), intents.MenuOption("done", "2", DONE_PHRASES)),
                       builtins=ASKS)
_GLOBAL = intents.Menu((), builtins=ASKS)


def _local_now() -> datetime:
    return datetime.now().astimezone()


class FlowRunner:
    """Executes one call of a flow.

    `clock` gives the local time for business hours (injected so tests choose the hour); `ticket_lookup`
    answers lookup nodes (see `ivr.tickets.lookup.store_lookup`); `on_node(node_id, flags)` hears each node the
    caller reaches (the console's live page shows it); `kb` answers kb nodes (none: their callers go to a person),
    counted in `kb_stats`.
    """

    def __init__(self, flow: Flow, io: CallIO, prompts: PromptLibrary, tickets: TicketSink,
                 elderly_numbers: frozenset[str] = frozenset(), *, clock: Callable[[], datetime] = _local_now,
                 ticket_lookup: TicketLookup | None = None,
                 on_node: Callable[[str, frozenset[str]], None] | None = None,
                 kb: KnowledgeBase | None = None, kb_stats: KbStats | None = None) -> None:
        self.flow = flow
        self.kb = kb
        self.kb_stats = kb_stats or KbStats()
        self.io = io
        self.prompts = prompts
        self.tickets = tickets
        self.clock = clock
        self.ticket_lookup = ticket_lookup
        self.on_node = on_node
        self._told_keys = False  # the caller heard that this call's answers are by keys
        info = io.channel.info
        self.call = CallRecord(info.call_id, info.caller, datetime.now(timezone.utc), flow_digest=flow.digest)
        if info.caller in elderly_numbers:
            self.call.flags.update({"elderly", "registered_elderly"})

    @property
    def style(self) -> str:
        return self.call.style

    def today(self) -> date:
        """The local date, for what the knowledge base may say today."""
        return self.clock().date()

    def _again(self, intent: str) -> str:
        """A request to hear it slower or louder is a request to repeat, and keeps that style for the call."""
        flag = ASKED_STYLE.get(intent)
        if flag is None:
            return intent
        if flag not in self.call.flags:
            self.call.flags.add(flag)
            log.info("call %s: the caller asked to hear it %s; style %s from now on", self.call.call_id, intent,
                     self.style)
        return "repeat"

    def _vad(self, no_input_ms: int) -> VadConfig:
        if self.style == "elderly":  # elderly callers get longer to answer and to pause
            return VadConfig(no_input_ms=min(60_000, int(no_input_ms * ELDERLY_TIMEOUT_FACTOR)), stop_ms=1_200)
        return VadConfig(no_input_ms=no_input_ms)

    async def run(self) -> CallRecord:
        """Run the call to its end; never raises for a caller hanging up."""
        nid = self.flow.start
        log.info("call %s from %s: flow %s (%s)", self.call.call_id, mask_number(self.call.caller), self.flow.name,
                 self.flow.digest[:12])
        try:
            for _ in range(MAX_STEPS):
                node = self.flow.nodes[nid]
                if not isinstance(node, CONTROL_KINDS):
                    self.call.path.append(nid)
                    if self.on_node is not None:
                        self.on_node(nid, frozenset(self.call.flags))
                nxt = await self._step(node)
                if nxt is None:
                    break
                nid = nxt
            else:
                log.error("call %s: flow %s ran %d steps; sending the caller to a person",
                          self.call.call_id, self.flow.name, MAX_STEPS)
                await self.io.channel.transfer("general")
                self.call.transferred("general")
            self.call.end = self.call.end or CallEnd.COMPLETED
        except CallerHungUp:
            self.call.end = CallEnd.CALLER_HUNG_UP
            log.info("call %s: caller hung up at node %s", self.call.call_id, nid)
        return self.call

    # -- playing

    async def _play(self, prompt: str | None, interruptible: bool = True) -> str | None:
        if not prompt:
            return None
        return await self.io.play(self.prompts.get(prompt, self.style), interruptible=interruptible)

    async def _play_parts(self, parts: list[Part], interruptible: bool = True) -> str | None:
        return await self.io.play(self.prompts.compose(parts, self.style), interruptible=interruptible)

    async def _say(self, play: Callable[[], object]) -> None:
        """Play, then replay as long as the caller pressed the repeat key during it."""
        for _ in range(MAX_REPEATS + 1):
            await play()  # type: ignore[misc]
            if self.io.next_key() != self.flow.repeat_key:
                return
            self.io.take_key()

    # -- nodes

    async def _step(self, node: Node) -> str | None:
        if isinstance(node, Say):
            await self._say(lambda: self._play(node.prompt, node.interruptible))
            return node.next
        if isinstance(node, Menu):
            return await self._menu(node)
        if isinstance(node, Collect):
            return await self._collect(node)
        if isinstance(node, Confirm):
            return await self._confirm(node)
        if isinstance(node, Answer):
            return await self._answer(node)
        if isinstance(node, Lookup):
            return await self._lookup(node)
        if isinstance(node, Kb):
            return await self._kb(node)
        if isinstance(node, Record):
            return await RecordStep(node, self).run()
        if isinstance(node, Transfer):
            return await self._transfer(node)
        if isinstance(node, Set):
            for name, value in node.values:
                self._set(name, value)
            return node.next
        if isinstance(node, Branch):
            return self._branch(node)
        if isinstance(node, Goto):
            return node.next
        if isinstance(node, Hangup):
            await self._play(node.prompt, interruptible=False)
            await self.io.channel.hangup()
            return None
        raise AssertionError(f"unknown node {node!r}")

    def _set(self, name: str, value: str | bool) -> None:
        if value is True:
            self.call.flags.add(name)
        elif value is False:
            self.call.flags.discard(name)
        else:
            self.call.vars[name] = str(value)

    def _value(self, name: str) -> str | bool:
        if name == "business_hours":
            now = self.clock()
            return self.flow.business_hours.contains(now.isoweekday(), now.time())
        if name in self.call.vars:
            return self.call.vars[name]
        return name in self.call.flags

    def _holds(self, condition: str) -> bool:
        negated, name, op, value = parse_condition(condition)
        current = self._value(name)
        if op is None:
            return bool(current) != negated
        equal = str(current).lower() == str(value).lower()
        return equal if op == "==" else not equal

    async def _fail(self, node: Menu | Collect | Confirm, silent: bool = False) -> str:
        """Where a caller goes after the last failed try: the elderly path once, then a person.

        A caller who stayed silent through every try is not helped by another menu: a person, with the elderly
        desk's priority."""
        if silent and self.flow.agent_node:
            self.call.flags.add("elderly")
            log.info("call %s: no input at %s on every try; a person, with priority", self.call.call_id, node.id)
            return self.flow.agent_node
        if self.flow.elderly_node and "elderly" not in self.call.flags:
            self.call.flags.add("elderly")  # repeated trouble: the simpler, slower path
            log.info("call %s: repeated no-input/no-match at %s; elderly path", self.call.call_id, node.id)
            return self.flow.elderly_node
        return node.on_fail or self.flow.agent_node

    def _agent(self, node_id: str) -> str:
        self.call.path[-1] = f"{node_id}=agent"
        return self.flow.agent_node

    async def _ask(self, play: Callable[[], Awaitable[object]], timeout_ms: int, **listen: Any) -> Heard:
        """Play a question and wait for the answer: by voice too when live recognition takes the step (elderly
        and urgent callers first), else by keys, which the caller is told once ("请按键选择")."""
        with self.io.speech_step(priority=bool({"elderly", "urgent"} & self.call.flags)) as by_voice:
            if not by_voice and not self._told_keys:
                self._told_keys = True
                await self._play(KEYS_ONLY)
            await play()
            return await self.io.listen(self._vad(timeout_ms), **listen)

    async def _menu(self, node: Menu) -> str:
        prompt = node.prompt
        failures = repeats = plain_repeats = silences = 0
        silent = True
        while True:
            heard = await self._ask(partial(self._play, prompt), node.timeout_ms)
            choice = self._menu_choice(node, heard, self._log_heard(node.id, heard))
            styled = choice in ASKED_STYLE  # asked for slower or louder, which that request itself gives
            if isinstance(choice, str):
                choice = self._again(choice)
            if choice == "repeat" and repeats < MAX_REPEATS:
                repeats += 1
                plain_repeats += not styled
                prompt = node.prompt
                if plain_repeats >= ASK_AGAIN_SLOWER and "elderly" not in self.call.flags:
                    self.call.flags.add("elderly")  # asked twice to hear it again: slower, louder prompts
                    log.info("call %s: repeated requests to repeat at %s; elderly style", self.call.call_id, node.id)
                continue
            if choice == "agent" and self.flow.agent_node:
                return self._agent(node.id)
            if isinstance(choice, Option):
                self.call.flags.update(choice.set_flags)
                self.call.path[-1] = f"{node.id}={choice.name}"
                return choice.next
            failures += 1
            silences += heard.kind == HeardKind.NO_INPUT
            silent = silent and heard.kind == HeardKind.NO_INPUT
            if failures > node.retries or silences > node.no_input_retries:
                return await self._fail(node, silent)
            prompt = (node.no_input_prompt if heard.kind == HeardKind.NO_INPUT else node.no_match_prompt) or node.prompt

    def _menu_choice(self, node: Menu, heard: Heard, entry: InputHeard) -> Option | str | None:
        model = meaning.family_model(node.understand) if node.understand else None
        intent = self._intent(intent_menu(node.options), heard, entry, model)
        return next((o for o in node.options if o.name == intent), None) or intent or None

    def _intent(self, menu: intents.Menu, heard: Heard, entry: InputHeard,
                model: meaning.IntentModel | None = None) -> str:
        """What the caller chose in `menu`, by key or by speech (keywords, and meaning when the menu has a `model`):
        an option's intent, "repeat", "slower", "louder" or "agent" (the flow's keys or the built-in phrases), or ""
        when nothing was recognised. A spoken choice is noted in the heard `entry` with how it was found."""
        if heard.kind == HeardKind.DTMF:
            key = heard.digits[:1]
            m = menu.match_dtmf(key)
            if isinstance(m, intents.IntentMatch):
                return m.intent
            if key and key == self.flow.repeat_key:
                return "repeat"
            return "agent" if key and key == self.flow.agent_key else ""
        if heard.kind == HeardKind.SPEECH and heard.transcript is not None:
            m = meaning.understand(menu, model, heard.transcript.text)
            if not isinstance(m, intents.IntentMatch):
                return ""
            entry["intent"], entry["by"] = m.intent, m.evidence.kind
            entry["score"], entry["evidence"] = round(m.score, 3), m.evidence.matched
            return m.intent
        return ""

    async def _collect(self, node: Collect) -> str:
        prompt = node.prompt
        failures = repeats = 0
        silent = True
        while True:
            heard = await self._ask(partial(self._play, prompt), node.timeout_ms, max_digits=node.max_digits,
                                    terminator=node.terminator, interdigit_ms=node.interdigit_ms)
            self._log_heard(node.id, heard)
            digits, special = self._digits_heard(heard)
            special = self._again(special)
            if special == "repeat" and repeats < MAX_REPEATS:
                repeats += 1
                prompt = node.prompt
                continue
            if special == "agent" and self.flow.agent_node:
                return self._agent(node.id)
            if digits and node.min_digits <= len(digits) <= node.max_digits:
                if node.readback_prompt is None:
                    self.call.vars[node.var] = digits
                    return node.next
                readback: list[Part] = [node.readback_prompt, Digits(digits)]
                if node.confirm_prompt:
                    readback.append(node.confirm_prompt)
                answer = await self._yes_no(node.id, readback, node.timeout_ms, node.retries)
                if answer == "yes":
                    self.call.vars[node.var] = digits
                    return node.next
                if answer == "agent":
                    return self._agent(node.id)
                if answer == "no":
                    prompt = node.prompt  # re-enter: not the caller's fault
                    continue
            failures += 1
            silent = silent and heard.kind == HeardKind.NO_INPUT
            if failures > node.retries:
                return await self._fail(node, silent)
            prompt = (node.no_input_prompt if heard.kind == HeardKind.NO_INPUT else node.no_match_prompt) or node.prompt

    def _digits_heard(self, heard: Heard) -> tuple[str, str]:
        """(digits, "" | "repeat" | "slower" | "louder" | "agent") from keys or from a spoken number."""
        if heard.kind == HeardKind.DTMF:
            if heard.digits == self.flow.repeat_key:
                return "", "repeat"
            if heard.digits == self.flow.agent_key:
                return "", "agent"
            return heard.digits if heard.digits.isdigit() else "", ""
        if heard.kind == HeardKind.SPEECH and heard.transcript is not None:
            found = numerals_to_digits(heard.transcript.text).numbers
            runs = [n.value for n in found if n.value.isdigit()]
            if runs:
                return max(runs, key=len), ""
            m = _GLOBAL.match_text(heard.transcript.text)
            if isinstance(m, intents.IntentMatch):
                return "", m.intent
        return "", ""

    async def _yes_no(self, nid: str, parts: list[Part], timeout_ms: int, retries: int,
                      no_input_prompt: str | None = None, no_match_prompt: str | None = None) -> str | None:
        """"yes", "no", "agent", or None after `retries` failed tries. Keys 1 (yes) and 2 (no), or speech."""
        failures = repeats = 0
        current: list[Part] = parts
        while True:
            heard = await self._ask(partial(self._play_parts, current), timeout_ms)
            intent = self._again(self._intent(_CONFIRM, heard, self._log_heard(nid, heard)))
            if intent == "repeat" and repeats < MAX_REPEATS:
                repeats += 1
                current = parts
                continue
            if intent in ("yes", "no") or (intent == "agent" and self.flow.agent_node):
                return intent
            failures += 1
            if failures > retries:
                return None
            retry = no_input_prompt if heard.kind == HeardKind.NO_INPUT else no_match_prompt
            current = [retry] if retry else parts

    async def _confirm(self, node: Confirm) -> str:
        answer = await self._yes_no(node.id, [node.prompt], node.timeout_ms, node.retries,
                                    node.no_input_prompt, node.no_match_prompt)
        if answer == "agent":
            return self._agent(node.id)
        if answer is None:
            return await self._fail(node)
        self.call.path[-1] = f"{node.id}={answer}"
        return node.yes if answer == "yes" else node.no

    async def _offer(self, node: Answer, replay: bool) -> None:
        if replay:
            await self._play(node.prompt)
        await self._play(node.offer_prompt)

    async def _answer(self, node: Answer) -> str:
        failures = repeats = 0
        replay = True
        while True:
            heard = await self._ask(partial(self._offer, node, replay), node.timeout_ms)
            intent = self._again(self._intent(_ANSWER, heard, self._log_heard(node.id, heard)))
            if intent == "repeat" and repeats < MAX_REPEATS:
                repeats += 1
                replay = True
                continue
            targets = {"more": node.more, "agent": node.agent, "done": node.done}
            if intent in targets:
                self.call.path[-1] = f"{node.id}={intent}"
                return targets[intent]
            failures += 1
            replay = False
            if failures > 1:  # they heard the answer; silence or confusion twice: a person helps
                self.call.path[-1] = f"{node.id}=agent"
                return node.agent

    async def _kb(self, node: Kb) -> str:
        if self.kb is None:
            log.error("call %s: no knowledge base loaded for node %s; a person", self.call.call_id, node.id)
            self.kb_stats.add("to_person")
            self.call.path[-1] = f"{node.id}=agent"
            return node.agent
        return await KbStep(node, self.kb, self.kb_stats, self).run()

    async def _lookup(self, node: Lookup) -> str:
        number = self.call.vars.get(node.var, "")
        status: str | None = None
        if self.ticket_lookup is None:
            log.warning("call %s: no ticket lookup configured for node %s", self.call.call_id, node.id)
        elif number:
            status = await asyncio.to_thread(self.ticket_lookup, number)
        if status is None:
            self.call.path[-1] = f"{node.id}=not_found"
            return node.not_found
        self.call.vars["ticket_status"] = status
        self.call.path[-1] = f"{node.id}=found"
        status_prompt = f"ticket_status_{status}"
        if status_prompt not in self.prompts.catalogue:
            status_prompt = "ticket_status_unknown"
        parts: list[Part] = [node.prompt, Digits(number)]
        if status_prompt in self.prompts.catalogue:
            parts.append(status_prompt)
        await self._say(lambda: self._play_parts(parts))
        return node.found

    async def _transfer(self, node: Transfer) -> str | None:
        await self._play(node.prompt, interruptible=False)
        self.call.priority = node.priority
        result = await self.io.channel.transfer(node.target)
        if result.ok:
            self.call.transferred(node.target)
            kind = "queue" if isinstance(node, Queue) else "transfer"
            log.info("call %s: %s to %s, priority %s", self.call.call_id, kind, node.target, node.priority)
            return None
        log.warning("call %s: transfer to %s failed: %s", self.call.call_id, node.target, result.reason)
        return node.on_fail or None

    def _branch(self, node: Branch) -> str:
        return next((c.next for c in node.cases if self._holds(c.when)), node.default)

    def _log_heard(self, nid: str, heard: Heard) -> InputHeard:
        entry = InputHeard(node=nid, kind=heard.kind.value, t_ms=heard.t_ms)
        if heard.digits:
            entry["digits"] = heard.digits
        if heard.transcript is not None:
            entry["text"] = heard.transcript.text
            entry["confidence"] = round(heard.transcript.confidence, 3)
        self.call.heard.append(entry)
        return entry
