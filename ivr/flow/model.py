"""The typed flow model the loader builds and the runner executes."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Option", "Node", "Say", "Menu", "Record", "Transfer", "Hangup", "Flow", "NODE_KINDS"]


@dataclass(frozen=True)
class Option:
    """One menu choice, reached by a key or by saying one of its phrases."""

    name: str
    key: str
    phrases: tuple[str, ...]
    next: str
    set_flags: tuple[str, ...] = ()  # caller flags this choice sets, e.g. "elderly"


@dataclass(frozen=True)
class Node:
    id: str
    line: int  # where the node starts in the flow file

    def targets(self) -> list[str]:
        """Every node this one can lead to."""
        return []


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

    def targets(self) -> list[str]:
        return [o.next for o in self.options] + ([self.on_fail] if self.on_fail else [])


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
class Hangup(Node):
    prompt: str | None = None


NODE_KINDS = {"say": Say, "menu": Menu, "record": Record, "transfer": Transfer, "hangup": Hangup}


@dataclass(frozen=True)
class Flow:
    name: str
    path: Path
    start: str
    nodes: dict[str, Node]
    repeat_key: str = "*"
    agent_key: str = "0"
    agent_node: str = ""
    elderly_node: str = ""  # where callers go after repeated no-input / no-match
    prompts_used: tuple[str, ...] = field(default=())
