"""The SIP front door's counters for Prometheus: calls taken, new calls refused and datagrams dropped, by kind,
whether the node is draining (what a proxy in front sees as 503 to its OPTIONS), and the log lines the rate-limited
logs held back (what a flood would otherwise have written)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ivr.lograte import suppressed_lines
from ivr.sip.uas import SipServer

__all__ = ["SipCollector"]


class SipCollector:
    """Reads the server's counters at each scrape; `server_of` gives None until the server is up."""

    def __init__(self, server_of: Callable[[], SipServer | None], registry: CollectorRegistry | None = None) -> None:
        self.server_of = server_of
        if registry is not None:
            registry.register(self)

    def collect(self) -> Iterator[Metric]:
        server = self.server_of()
        if server is not None:
            yield CounterMetricFamily("ivr_sip_calls", "New calls taken (INVITEs accepted)",
                                      value=server.counters.get("calls", 0))
            yield GaugeMetricFamily("ivr_sip_draining", "1 while stopping: new calls and OPTIONS get 503",
                                    value=int(server.draining))
            yield _family("ivr_sip_invites_refused", "New calls refused (INVITE answered 4xx/5xx), by reason",
                          "reason", server.refused)
            yield _family("ivr_sip_datagrams_dropped", "SIP datagrams dropped unanswered, by reason", "reason",
                          server.dropped)
        yield _family("ivr_log_lines_suppressed", "Repeated log lines held back by the log rate limit, by logger",
                      "logger", suppressed_lines)


def _family(name: str, doc: str, label: str, counts: Counter[str]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, n in sorted(dict(counts).items()):  # copied in one step: the console scrapes from its own thread
        family.add_metric([key], n)
    return family
