"""Call queue and durable callbacks: priority classes with ageing, expected waits, agents, callbacks in SQLite."""
from ivr.queue.call_queue import CallQueue, QueuePolicy, QueueStats
from ivr.queue.estimate import DrainRates, DrainView, HandleTimes, erlang_c, erlang_c_wait, projected_wait
from ivr.queue.model import (
    Agent, AgentState, Announce, Connect, OfferCallback, Priority, QueuedCall, QueueError, QueueEvent,
    QueueFull, Rejected, UnknownAgent, UnknownCall,
)

__all__ = [
    "CallQueue", "QueuePolicy", "QueueStats", "DrainRates", "DrainView", "HandleTimes", "erlang_c", "erlang_c_wait",
    "projected_wait",
    "Agent", "AgentState", "Announce", "Connect", "OfferCallback", "Priority", "QueuedCall",
    "QueueError", "QueueEvent", "QueueFull", "Rejected", "UnknownAgent", "UnknownCall",
]
