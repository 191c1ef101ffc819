"""The media clock's counters for Prometheus: what a busy event loop cost the calls."""
from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ivr.rtp.clock import MediaClock

__all__ = ["ClockCollector"]


class ClockCollector:
    """Reads the clock at each scrape; `clock_of` gives None until the server (and its clock) is up."""

    def __init__(self, clock_of: Callable[[], MediaClock | None], registry: CollectorRegistry | None = None) -> None:
        self.clock_of = clock_of
        if registry is not None:
            registry.register(self)

    def collect(self) -> Iterator[Metric]:
        clock = self.clock_of()
        if clock is None:
            return
        counters = (
            ("ivr_media_clock_ticks", "20 ms media ticks served", clock.ticks),
            ("ivr_media_clock_late_ticks", "Ticks that fired after the next one was due", clock.late_ticks),
            ("ivr_media_clock_stalls", "Ticks more than 100 ms late (the event loop was blocked)", clock.stalls),
            ("ivr_media_clock_missed_ticks", "Ticks skipped after stalls: 20 ms frames every call lost each way",
             clock.missed_ticks),
        )
        for name, doc, value in counters:
            yield CounterMetricFamily(name, doc, value=value)
        yield GaugeMetricFamily("ivr_media_clock_max_lateness_seconds", "The latest a tick has fired",
                                value=clock.max_lateness)
