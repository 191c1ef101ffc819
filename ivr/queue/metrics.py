"""Prometheus metrics and a JSON snapshot of the queue (for `ivr queue status` from another process). A node
sharing the centre's queue also gives the centre's gauges (`ivr_centre_*`: its queue, operators and nodes, the
same on every node) beside its own (`ivr_node_*`)."""
from __future__ import annotations

import json
import statistics
from collections.abc import Collection
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from ivr.queue.call_queue import CallQueue
from ivr.queue.callbacks import CallbackStore
from ivr.queue.model import AgentState, Priority
from ivr.queue.shared import SharedQueue
from ivr.storage import write_atomic

__all__ = ["QueueMetrics", "snapshot", "snapshot_path", "write_snapshot", "read_snapshot"]


def snapshot_path(data_dir: Path) -> Path:
    """Where a running server writes the queue's status for `ivr queue status`: `queue-status.json` in the data
    folder."""
    return Path(data_dir) / "queue-status.json"


def snapshot(queue: CallQueue, pausing: Collection[str] = ()) -> dict[str, Any]:
    """Plain-data view of the queue: lengths per group and class, oldest wait, agents, service level, errors.
    `pausing`: operators in a wrap-up set by hand, shown as wrap-up (the queue has them out meanwhile)."""
    st = queue.stats
    errs = sorted(st.estimate_errors)
    return {
        "time": queue.clock(),
        "length": {g: {p.name.lower(): queue.length(g, p) for p in Priority} for g in queue.groups},
        "oldest_wait_s": queue.oldest_wait(),
        "agents": {a.agent_id: {"uri": a.uri, "groups": list(a.groups),
                                "state": (AgentState.WRAP_UP if a.agent_id in pausing else a.state).value}
                   for a in queue.agents.values()},
        "offered": st.offered, "answered": st.answered, "abandoned": st.abandoned, "rejected": st.rejected,
        "callbacks_booked": st.callbacks_booked,
        "service_level": {str(int(s)): st.service_level(s) for s in queue.policy.service_levels_s},
        "estimate_error_mean": statistics.fmean(errs) if errs else 0.0,
        "estimate_error_p90": errs[int(0.9 * (len(errs) - 1))] if errs else 0.0,
    }


def write_snapshot(queue: CallQueue, path: Path, pausing: Collection[str] = ()) -> None:
    """Write the snapshot atomically (temp file + rename; a failed write leaves no temp file)."""
    write_atomic(path, json.dumps(snapshot(queue, pausing), ensure_ascii=False).encode("utf-8"))


def read_snapshot(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


class QueueMetrics:
    """Gauges refreshed from the queue and the callback store; serve `registry` with prometheus_client."""

    def __init__(self, queue: CallQueue, store: CallbackStore | None = None,
                 registry: CollectorRegistry | None = None) -> None:
        self.queue, self.store = queue, store
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.length = Gauge("ivr_queue_length", "Calls waiting", ["group", "priority"], registry=r)
        self.oldest = Gauge("ivr_queue_oldest_wait_seconds", "Longest current wait", registry=r)
        self.agents = Gauge("ivr_queue_agents", "Agents by state", ["state"], registry=r)
        self.service = Gauge("ivr_queue_service_level", "Share answered by a person within the threshold",
                             ["within_seconds"], registry=r)
        self.calls = Gauge("ivr_queue_calls", "Calls since start by outcome", ["outcome"], registry=r)
        self.abandon = Gauge("ivr_queue_abandonment_ratio", "Abandoned / (answered + abandoned)", registry=r)
        self.callbacks = Gauge("ivr_queue_callbacks", "Callbacks by status", ["status"], registry=r)
        self.est_err = Gauge("ivr_queue_wait_estimate_error", "Relative error of the wait estimate at entry",
                             ["stat"], registry=r)
        self.shared = queue if isinstance(queue, SharedQueue) else None
        if self.shared is not None:
            self.node_waiting = Gauge("ivr_node_waiting", "This node's callers waiting in the centre's queue",
                                      registry=r)
            self.node_lost = Gauge("ivr_node_lost_callers", "Callers of this node's previous run that left the "
                                   "queue when it restarted", registry=r)
            self.centre_waiting = Gauge("ivr_centre_waiting", "Calls waiting in the centre's queue",
                                        ["group", "kind"], registry=r)
            self.centre_agents = Gauge("ivr_centre_agents", "The centre's operators by state", ["state"], registry=r)
            self.centre_nodes = Gauge("ivr_centre_nodes", "Nodes by state", ["state"], registry=r)
            self.centre_lost = Gauge("ivr_centre_lost_callers", "Callers abandoned when their node was lost",
                                     ["node"], registry=r)
            self.centre_beat = Gauge("ivr_centre_heartbeat_age_seconds", "Age of each node's last heartbeat",
                                     ["node"], registry=r)

    def refresh(self, pausing: Collection[str] = ()) -> None:
        snap = snapshot(self.queue, pausing)
        for g, per in snap["length"].items():
            for p, n in per.items():
                self.length.labels(g, p).set(n)
        self.oldest.set(snap["oldest_wait_s"])
        for s in AgentState:
            self.agents.labels(s.value).set(sum(1 for a in snap["agents"].values() if a["state"] == s.value))
        for s, v in snap["service_level"].items():
            self.service.labels(s).set(v)
        for k in ("offered", "answered", "abandoned", "rejected", "callbacks_booked"):
            self.calls.labels(k).set(snap[k])
        base = snap["answered"] + snap["abandoned"]
        self.abandon.set(snap["abandoned"] / base if base else 0.0)
        if self.store is not None:
            for status, n in self.store.counts().items():
                self.callbacks.labels(status).set(n)
        self.est_err.labels("mean").set(snap["estimate_error_mean"])
        self.est_err.labels("p90").set(snap["estimate_error_p90"])
        if self.shared is not None:
            self._refresh_centre(self.shared)

    def _refresh_centre(self, queue: SharedQueue) -> None:
        view = queue.view  # as read at the latest beat, off the event loop
        if view is None:
            return
        self.node_waiting.set(queue.own_waiting)
        self.node_lost.set(queue.lost_callers)
        for g in queue.groups:
            for kind in ("caller", "callback"):
                self.centre_waiting.labels(g, kind).set(sum(
                    1 for c in view["queue"] if c["status"] == "waiting" and c["group"] == g
                    and c["callback"] == (kind == "callback")))
        for s in AgentState:
            self.centre_agents.labels(s.value).set(sum(1 for a in view["agents"].values() if a["state"] == s.value))
        for state in ("up", "lost", "stopped"):
            self.centre_nodes.labels(state).set(sum(1 for n in view["nodes"] if n["state"] == state))
        for n in view["nodes"]:
            self.centre_lost.labels(n["node"]).set(n["lost_callers"])
            self.centre_beat.labels(n["node"]).set(n["heartbeat_age_s"])
