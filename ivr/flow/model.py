"""The typed flow model the loader builds and the runner executes."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from pathlib import Path

__all__ = [
    "Option", "Node", "Say", "Menu", "Collect", "Confirm", "Answer", "Lookup", "Record", "Transfer", "Queue",
    "Set", "Case", "Branch", "Goto", "Hangup", "Kb", "KB_PROMPTS", "BusinessHours", "Flow", "NODE_KINDS", "TERMINAL_KINDS",
]


@dataclass(frozen=True)
class Option:
    """One menu choice, reached by a key or by saying one of its phrases."""

    name: str
    key: str
    phrases: tuple[str, ...]
    next: str
    set_flags: tuple[str, ...] = ()  # caller flags this choice sets, e.g. "elderly"
    line: int = 0


@dataclass(frozen=True)
class Node:
    id: str
    line: int  # where the node starts in the flow file

    def targets(self) -> list[str]:
        """Every node this one can lead to."""
        return []

    def prompts(self) -> list[str]:
        """Every prompt id this node plays."""
        return [p for p in (getattr(self, a, None) for a in ("prompt", "no_input_prompt", "no_match_prompt",
                                                              "readback_prompt", "confirm_prompt",
                                                              "offer_prompt")) if p]


@dataclass(frozen=True)
class Say(Node):
    prompt: str
    next: str
    interruptible: bool = True

    def targets(self) -> list[str]:
        return [self.next]


@dataclass(frozen=True)
class Menu(Node):
    prompt: str
    options: tuple[Option, ...]
    no_input_prompt: str | None = None
    no_match_prompt: str | None = None
    timeout_ms: int = 6000
    retries: int = 2
    on_fail: str = ""
    understand: str = ""  # the intent family (asr.meaning) whose learned model reads callers' own words
    no_input_retries: int = 2  # tries after a silence (the loader's default: `retries`)

    def targets(self) -> list[str]:
        return [o.next for o in self.options] + ([self.on_fail] if self.on_fail else [])


@dataclass(frozen=True)
class Collect(Node):
    """Digits by key (or spoken), stored in a variable, read back digit by digit and confirmed."""

    prompt: str
    var: str
    next: str
    min_digits: int = 1
    max_digits: int = 20
    terminator: str = "#"
    timeout_ms: int = 8000
    interdigit_ms: int = 4000
    readback_prompt: str | None = None  # "您输入的是" before the digits; None: no read-back
    confirm_prompt: str | None = None  # "确认请按1，重新输入请按2" after the read-back
    no_input_prompt: str | None = None
    no_match_prompt: str | None = None
    retries: int = 2
    on_fail: str = ""

    def targets(self) -> list[str]:
        return [self.next] + ([self.on_fail] if self.on_fail else [])


@dataclass(frozen=True)
class Confirm(Node):
    """Yes (key 1) or no (key 2), by key or by speech."""

    prompt: str
    yes: str
    no: str
    no_input_prompt: str | None = None
    no_match_prompt: str | None = None
    timeout_ms: int = 6000
    retries: int = 2
    on_fail: str = ""

    def targets(self) -> list[str]:
        return [self.yes, self.no] + ([self.on_fail] if self.on_fail else [])


@dataclass(frozen=True)
class Answer(Node):
    """A knowledge-base answer, then an offer: hear it again (*), another question (1), a person (0), done (2)."""

    prompt: str
    offer_prompt: str
    more: str
    agent: str
    done: str
    timeout_ms: int = 6000

    def targets(self) -> list[str]:
        return [self.more, self.agent, self.done]


KB_PROMPTS = ("kb_ask", "kb_ask_again", "kb_keys", *(f"kb_key_{k}" for k in range(1, 10)), "kb_key_agent",
              "kb_confirm_keys", "kb_choices", "kb_after", "kb_after_ticket", "kb_to_person", "kb_ticket_saved")
"""The catalogue prompts kb nodes say (besides each entry's own, rendered from the knowledge base)."""


@dataclass(frozen=True)
class Kb(Node):
    """The knowledge base: the caller says a question (or picks one of `top`, the most asked entries, by key), a
    confident match is confirmed ("您是想问…吗？") and answered, else the best few are offered by key, then a
    person (`agent`); after an answer: again (*), another question (1), done (2), a ticket (3), a person (0)."""

    agent: str
    done: str
    top: tuple[str, ...]  # entry ids offered by keys 1..n to callers who answer by keys
    threshold: float  # a search score from which the best entry is put to the caller
    prompt: str = "kb_ask"
    ticket: bool = True  # offer a ticket with the question and the entry given
    timeout_ms: int = 8000
    retries: int = 1

    def targets(self) -> list[str]:
        return [self.agent, self.done]


@dataclass(frozen=True)
class Lookup(Node):
    """Look up a ticket by the number in `var` and read its status; `not_found` when there is none."""

    var: str
    found: str
    not_found: str
    prompt: str  # "工单号" before the digits are read back

    def targets(self) -> list[str]:
        return [self.found, self.not_found]


@dataclass(frozen=True)
class Record(Node):
    prompt: str
    next: str
    ticket_kind: str = "complaint"
    max_ms: int = 120_000
    end_silence_ms: int = 3_000
    no_input_ms: int = 8_000
    beep: bool = True

    def targets(self) -> list[str]:
        return [self.next]


@dataclass(frozen=True)
class Transfer(Node):
    target: str  # an agent group, e.g. "general" or "elderly"
    prompt: str | None = None
    priority: str = "normal"
    on_fail: str = ""

    def targets(self) -> list[str]:
        return [self.on_fail] if self.on_fail else []


@dataclass(frozen=True)
class Queue(Transfer):
    """The hand-off point for the queue: for now a transfer to an agent group with a priority."""


@dataclass(frozen=True)
class Set(Node):
    values: tuple[tuple[str, str | bool], ...]  # variable -> value; a flag is a variable set to true
    next: str

    def targets(self) -> list[str]:
        return [self.next]


@dataclass(frozen=True)
class Case:
    when: str  # "elderly", "!business_hours", "lang == zh"
    next: str


@dataclass(frozen=True)
class Branch(Node):
    cases: tuple[Case, ...]
    default: str

    def targets(self) -> list[str]:
        return [c.next for c in self.cases] + [self.default]


@dataclass(frozen=True)
class Goto(Node):
    next: str

    def targets(self) -> list[str]:
        return [self.next]


@dataclass(frozen=True)
class Hangup(Node):
    prompt: str | None = None


NODE_KINDS: dict[str, type[Node]] = {
    "say": Say, "menu": Menu, "collect": Collect, "confirm": Confirm, "answer": Answer, "lookup": Lookup,
    "record": Record, "transfer": Transfer, "queue": Queue, "set": Set, "branch": Branch, "goto": Goto,
    "hangup": Hangup, "kb": Kb,
}
TERMINAL_KINDS = (Transfer, Hangup)  # a path must be able to reach one of these (Queue is a Transfer)
CONTROL_KINDS = (Set, Branch, Goto)  # play nothing, hear nothing: left out of a call's path


@dataclass(frozen=True)
class BusinessHours:
    """When people answer: weekdays (1 = Monday) and a daily opening time."""

    days: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
    open: time = time(8, 0)
    close: time = time(20, 0)

    def contains(self, weekday: int, at: time) -> bool:
        return weekday in self.days and self.open <= at < self.close


@dataclass(frozen=True)
class Flow:
    name: str
    path: Path
    start: str
    nodes: dict[str, Node]
    repeat_key: str = "*"
    agent_key: str = "0"  # reaches `agent_node` from any menu, "" to turn it off
    agent_node: str = ""
    elderly_node: str = ""  # where callers go after repeated no-input / no-match
    business_hours: BusinessHours = field(default_factory=BusinessHours)
    prompts_used: tuple[str, ...] = field(default=())
    digest: str = ""  # sha256 of the file's text: which version a call ran
