"""Typed values of the call queue: agents, priority classes, queued calls and the events the flow plays."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ivr.errors import IvrError

__all__ = [
    "AgentState", "Priority", "Agent", "QueuedCall", "Announce", "OfferCallback", "Connect",
    "Rejected", "QueueEvent", "QueueError", "QueueFull", "UnknownCall", "UnknownAgent",
]


class QueueError(IvrError):
    """Base of every queue error."""


class QueueFull(QueueError):
    """The queue is at its maximum length."""


class UnknownCall(QueueError):
    """No queued call has this id."""


class UnknownAgent(QueueError):
    """No agent has this id."""


class AgentState(str, enum.Enum):
    AVAILABLE = "available"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    SIGNED_OUT = "signed_out"


class Priority(enum.IntEnum):
    """Lower value is served first (before ageing)."""
    URGENT = 0
    ELDERLY = 1  # elderly and disabled callers
    NORMAL = 2

    @classmethod
    def parse(cls, text: str) -> Priority:
        """Map a flow priority name (normal | elderly | disabled | urgent) to a class."""
        names = {"urgent": cls.URGENT, "elderly": cls.ELDERLY, "disabled": cls.ELDERLY, "normal": cls.NORMAL, "": cls.NORMAL}
        try:
            return names[text.strip().lower()]
        except KeyError:
            raise QueueError(f"unknown priority {text!r}") from None


@dataclass
class Agent:
    """One operator: a SIP URI in one or more groups."""
    agent_id: str
    uri: str
    groups: tuple[str, ...]
    state: AgentState = AgentState.SIGNED_OUT
    since: float = 0.0
    wrap_up_until: float = 0.0
    call_id: str | None = None


@dataclass
class QueuedCall:
    """A caller waiting (live) or a booked callback holding its virtual place."""
    call_id: str
    group: str
    priority: Priority
    entered: float
    seq: int
    ticket: str = ""
    callback: bool = False
    next_announce: float = 0.0
    offered: bool = False
    estimate_at_entry: float = 0.0
    announced: list[float] = field(default_factory=list)  # when announced
    announced_waits: list[float] = field(default_factory=list)  # the wait told then (seconds)


@dataclass(frozen=True)
class Announce:
    """Tell the caller their position (1 = next) and expected wait; `wait_minutes` is what to say
    (`estimate.spoken_minutes`: 0 = "under a minute", else the nearest whole minute; 0 too when `wait_s` is inf)."""
    call_id: str
    position: int
    wait_s: float
    wait_minutes: int


@dataclass(frozen=True)
class OfferCallback:
    """Offer a callback that keeps the caller's place ("按1预约回拨，为您保留排队位置")."""
    call_id: str
    wait_s: float
    reason: str  # "threshold" | "key"


@dataclass(frozen=True)
class Connect:
    """Connect a queued call (or dial a callback) to this agent."""
    call_id: str
    agent_id: str
    agent_uri: str
    waited_s: float
    callback: bool
    ticket: str


@dataclass(frozen=True)
class Rejected:
    """The call could not be queued (queue full)."""
    call_id: str
    reason: str


QueueEvent = Announce | OfferCallback | Connect | Rejected
