"""The flow's knowledge-base node: a caller asks in their own words and hears the answer, or reaches a person.

The caller is asked 请说出您想咨询的问题 (a speech step, so live recognition's admission applies); a caller whose
answers are by keys, who presses a key, or who stays silent gets the node's most asked entries by key. What was said
is searched (`ivr.kb`): a best entry scoring at least the node's threshold is put to the caller, "您是想问…吗？",
confirmed by key (1 yes, 2 no) or voice; a question asked in place of the answer (不是，我是问…) that names another
entry as surely is put to the caller in turn; below it, or on "不是", the best two or three are offered by key, then a
person. Only an entry that is speakable today (checked, not expired) and whose answer is rendered (prompt
``kb_<id>``, by ``ivr prompts build``) is ever spoken: for any other the caller is offered a person. After an
answer: again (*), another question (1), done (2), a ticket with the question and the entry (3), a person (0).
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

from asr import intents
from asr.results import Transcript
from ivr.call import InputHeard
from ivr.flow.dialogue import Dialogue
from ivr.flow.model import Kb
from ivr.kb import Entry, KnowledgeBase
from ivr.media.callio import Heard, HeardKind
from prompts.compose import Digits, Part

__all__ = ["KbStats", "KbStep", "KB_EVENTS", "ASKS", "MORE_PHRASES", "DONE_PHRASES", "answer_prompt",
           "question_prompt", "title_prompt"]

log = logging.getLogger(__name__)

KB_EVENTS = ("asked", "answered", "confirmed", "declined", "to_person", "tickets")
ASKS = ("agent", "repeat", "slower", "louder")  # what a caller may ask at any question
MORE_PHRASES = ("其他问题", "还有问题", "继续咨询", "别的问题")
DONE_PHRASES = ("没有了", "没有问题", "不用了", "结束", "再见", "清楚了", "知道了", "明白了")
TICKET_PHRASES = ("登记", "工单", "记录一下", "留个记录", "记下来")
MAX_QUESTIONS = 5  # questions in one visit; then the caller is offered a person
MAX_REPEATS = 4
MAX_REASKS = 2  # questions asked in place of a "yes" or "no" to the entry put to the caller
CHOICES = 3  # entries offered by key after a question that found no sure answer
OFFER_FLOOR = 0.05  # ... each at least this likely to be the one asked (search scores are calibrated chances)
_GLOBAL = intents.Menu((), builtins=ASKS)
_CONFIRM = intents.Menu.confirm()


def answer_prompt(entry_id: str) -> str:
    """The prompt of an entry's spoken answer."""
    return f"kb_{entry_id}"


def question_prompt(entry_id: str) -> str:
    """The prompt putting an entry to the caller: 您是想问<title>吗？"""
    return f"kbq_{entry_id}"


def title_prompt(entry_id: str) -> str:
    """The prompt of an entry's title alone, said in a list of entries offered by key."""
    return f"kbt_{entry_id}"


ENTRY_PROMPTS = (answer_prompt, question_prompt, title_prompt)


class KbStats:
    """How callers fared with the knowledge base, for `/metrics`: questions asked, answers spoken, best entries
    confirmed and declined, callers sent on to a person, tickets left. Shared by every call of a node."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, event: str) -> None:
        assert event in KB_EVENTS, event
        with self._lock:
            self._counts[event] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {e: self._counts[e] for e in KB_EVENTS}


@dataclass
class _Instead:
    """A question the caller asked in place of a yes or a no, and how it was heard."""

    heard: Heard
    logged: InputHeard
    text: str


@dataclass
class _Question:
    """What the caller asked, as heard ("" and None when they chose by key)."""

    text: str = ""
    transcript: Transcript | None = None


class KbStep:
    """One visit of a kb node; `run()` gives the next node."""

    def __init__(self, node: Kb, kb: KnowledgeBase, stats: KbStats, runner: Dialogue) -> None:
        self.node, self.kb, self.stats, self.r = node, kb, stats, runner

    # -- the visit

    async def run(self) -> str:
        for _ in range(MAX_QUESTIONS):
            question = _Question()
            found = await self._find(question)
            if found is None:
                return self._to_person()
            outcome = await self._answer(found, question)
            if outcome == "more":
                continue
            if outcome == "agent":
                return self._to_person()
            return self.node.done
        return self._to_person()

    def _to_person(self) -> str:
        self.stats.add("to_person")
        self._path("agent")
        return self.node.agent

    def _path(self, what: str) -> None:
        path = self.r.call.path
        if path and path[-1] == self.node.id:
            path[-1] = f"{self.node.id}={what}"
        else:
            path.append(f"{self.node.id}={what}")

    def speakable(self, entry: Entry) -> bool:
        """Whether the entry may be spoken today and its prompts (answer, question, title) are rendered."""
        has = self.r.prompts.has
        return entry.speakable(self.r.today()) and all(has(p(entry.id), self.r.style) for p in ENTRY_PROMPTS)

    async def _speakable(self, entries: Sequence[Entry]) -> list[Entry]:
        """Those of `entries` that may be spoken, their prompts' files read off the media loop."""
        return await asyncio.to_thread(lambda: [e for e in entries if self.speakable(e)])

    async def _say(self, parts: list[Part], interruptible: bool = True) -> str | None:
        """Play prompts joined off the media loop (an answer is up to 30 s of audio to trim and level)."""
        audio = await asyncio.to_thread(self.r.prompts.compose, parts, self.r.style)
        return await self.r.io.play(audio, interruptible=interruptible)

    # -- finding the entry

    async def _find(self, question: _Question) -> Entry | None:
        """The entry the caller wants, or None for a person."""
        node, r = self.node, self.r
        prompt, tries, repeats = node.prompt, 0, 0
        while True:
            heard: Heard | None = None
            with r.io.speech_step(priority=bool({"elderly", "urgent"} & r.call.flags)) as by_voice:
                if by_voice:
                    await r._play_parts([prompt])
                    heard = await r.io.listen(r._vad(node.timeout_ms))
            if heard is None:  # live recognition cannot take the caller's answers: the most asked entries by key
                return await self._keyed(await self._top(), "kb_keys", count_asked=True)
            logged = r._log_heard(node.id, heard)
            if heard.kind == HeardKind.DTMF:
                key = heard.digits[:1]
                if key == r.flow.agent_key:
                    return None
                if key == r.flow.repeat_key and repeats < MAX_REPEATS:
                    repeats += 1
                    continue
                top = dict(await self._top())
                if key in top:  # the keys of the most asked entries work without hearing the list
                    self.stats.add("asked")
                    return top[key]
                return await self._keyed(await self._top(), "kb_keys", count_asked=True)
            text = heard.transcript.text.strip() if heard.transcript is not None else ""
            if heard.kind == HeardKind.SPEECH and text:
                found = await self._search(heard, logged, question)
                if found is not False:
                    return found
            tries += 1
            if tries > node.retries:  # silence or nothing found again: the most asked entries by key
                return await self._keyed(await self._top(), "kb_keys", count_asked=True)
            prompt = "kb_ask_again"

    async def _search(self, heard: Heard, logged: InputHeard, question: _Question, text: str = "",
                      declined: tuple[str, ...] = ()) -> Entry | Literal[False] | None:
        """What a spoken question (`text`, else all that was heard) leads to: an entry, None (a person), or False
        (nothing understood: ask again). `declined`: the entries the caller said no to, asking this instead."""
        node, r = self.node, self.r
        assert heard.transcript is not None
        text = text or heard.transcript.text.strip()
        hits = self.kb.search(text, limit=CHOICES + 1)
        best = hits[0] if hits else None
        if best is None or best.score < node.threshold:
            asked = r._again(r._intent(_GLOBAL, heard, logged))
            if asked == "agent":
                return None  # 转人工, not a question
            if asked == "repeat":
                return False
        self.stats.add("asked")
        question.text, question.transcript = text, heard.transcript
        r.call.vars["kb_question"] = text
        log.info("call %s: kb question at %s: best %s", r.call.call_id, node.id,
                 f"{best.entry.id} ({best.score:.2f})" if best else "none")
        others = hits
        if best is not None and best.score >= node.threshold:
            if not await self._speakable([best.entry]):  # unverified, expired or not rendered: never spoken
                log.info("call %s: kb entry %s is not speakable; a person", r.call.call_id, best.entry.id)
                await r._play_parts(["kb_to_person"], interruptible=False)
                return None
            answer = await self._confirm(best.entry, declined)
            if isinstance(answer, _Instead):  # 不是，我是问…: the caller's new question, as if asked first
                self.stats.add("declined")
                return await self._search(answer.heard, answer.logged, question, answer.text,
                                          (*declined, best.entry.id))
            if answer == "yes":
                self.stats.add("confirmed")
                return best.entry
            if answer == "agent":
                return None
            if answer == "no":
                self.stats.add("declined")
                others = hits[1:]
        offered = (await self._speakable([h.entry for h in others if h.score >= OFFER_FLOOR]))[:CHOICES]
        if not offered:
            if others is hits:  # nothing close to what was said: ask again, then the most asked by key
                return False
            await r._play_parts(["kb_to_person"], interruptible=False)
            return None
        return await self._keyed([(str(i + 1), e) for i, e in enumerate(offered)], "kb_choices")

    async def _confirm(self, entry: Entry, declined: tuple[str, ...]) -> str | None | _Instead:
        """Put `entry` to the caller (您是想问…吗？ 1 yes, 2 no): "yes", "no", "agent" or None when no answer came,
        or instead the question the caller asked in its place (不是，我是问…; or just another question), when it
        names another entry surely enough to be put to them in turn."""
        r, node = self.r, self.node
        failures = repeats = 0
        while True:
            heard = await r._ask(partial(r._play_parts, [question_prompt(entry.id), "kb_confirm_keys"]),
                                 node.timeout_ms)
            logged = r._log_heard(node.id, heard)
            answer = r._again(r._intent(_CONFIRM, heard, logged))
            if answer == "repeat" and repeats < MAX_REPEATS:
                repeats += 1
                continue
            if answer in ("", "no") and heard.transcript is not None and len(declined) < MAX_REASKS:
                said = heard.transcript.text
                rest = (said.replace(str(logged.get("evidence", "")), "", 1) if answer else said).strip(" ，。,.")
                best = self.kb.search(rest, limit=1) if rest else []
                if best and best[0].score >= node.threshold and best[0].entry.id not in (*declined, entry.id):
                    return _Instead(heard, logged, rest)
            if answer in ("yes", "no", "agent"):
                return answer
            failures += 1
            if failures > 1:
                return None

    async def _top(self) -> list[tuple[str, Entry]]:
        """The node's most asked entries that may be spoken today, with their keys (their place in `top`)."""
        keyed = [(str(i + 1), e) for i, e in enumerate(map(self.kb.get, self.node.top)) if e is not None]
        speakable = await self._speakable([e for _, e in keyed])
        return [(key, e) for key, e in keyed if e in speakable]

    async def _keyed(self, entries: Sequence[tuple[str, Entry]], intro: str, count_asked: bool = False
                     ) -> Entry | None:
        """Offer `entries` by key (or by saying their title), then a person (0): the chosen entry or None."""
        r, node = self.r, self.node
        if not entries:
            await r._play_parts(["kb_to_person"], interruptible=False)
            return None
        menu = intents.Menu(tuple(intents.MenuOption(e.id, key, (e.title,)) for key, e in entries), builtins=ASKS)
        parts: list[Part] = [intro]
        for key, e in entries:
            parts += [title_prompt(e.id), f"kb_key_{key}"]
        parts.append("kb_key_agent")
        failures = repeats = 0
        while True:
            heard = await r._ask(partial(self._say, parts), node.timeout_ms)
            choice = r._again(r._intent(menu, heard, r._log_heard(node.id, heard)))
            if choice == "repeat" and repeats < MAX_REPEATS:
                repeats += 1
                continue
            if choice == "agent":
                return None
            chosen = next((e for _, e in entries if e.id == choice), None)
            if chosen is not None:
                if count_asked:
                    self.stats.add("asked")
                return chosen
            failures += 1
            if failures > node.retries:
                return None

    # -- answering

    async def _answer(self, entry: Entry, question: _Question) -> str:
        """Speak the entry's answer and offer what next: "more", "done" or "agent"."""
        r, node = self.r, self.node
        if not await self._speakable([entry]):
            await r._play_parts(["kb_to_person"], interruptible=False)
            return "agent"
        self.stats.add("answered")
        r.call.vars["kb_entry"] = entry.id
        self._path(entry.id)
        log.info("call %s: kb answer %s at %s", r.call.call_id, entry.id, node.id)
        menu = _AFTER_TICKET if node.ticket else _AFTER
        offer = "kb_after_ticket" if node.ticket else "kb_after"
        replay, failures, repeats = True, 0, 0
        while True:
            parts: list[Part] = [answer_prompt(entry.id), offer] if replay else [offer]
            heard = await r._ask(partial(self._say, parts), node.timeout_ms)
            choice = r._again(r._intent(menu, heard, r._log_heard(node.id, heard)))
            if choice == "repeat" and repeats < MAX_REPEATS:
                repeats, replay = repeats + 1, True
                continue
            if choice == "ticket":
                return await self._ticket(entry, question)
            if choice in ("more", "done", "agent"):
                return choice
            failures, replay = failures + 1, False
            if failures > 1:  # they heard the answer; silence or confusion twice: a person helps
                return "agent"

    async def _ticket(self, entry: Entry, question: _Question) -> str:
        r = self.r
        number = r.tickets.consulted(r.call, question.text, question.transcript, entry.id, entry.title)
        if not number:
            return "agent"  # not stored: a person takes it down
        self.stats.add("tickets")
        r.call.tickets.append(number)
        self._path("ticket")
        await r._play_parts(["kb_ticket_saved", Digits(number)], interruptible=False)
        return "done"


_MORE = intents.MenuOption("more", "1", MORE_PHRASES)
_DONE = intents.MenuOption("done", "2", DONE_PHRASES)
_AFTER = intents.Menu((_MORE, _DONE), builtins=ASKS)
_AFTER_TICKET = intents.Menu((_MORE, _DONE, intents.MenuOption("ticket", "3", TICKET_PHRASES)), builtins=ASKS)
