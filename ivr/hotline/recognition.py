"""Live recognition on one node: the decoding scheduler, the admission control and the callers' reply times that
every call shares, and what they tell `/metrics` and `ivr queue status` (`recognition-status.json`)."""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from asr.load import Admission
from asr.stream import DecodeScheduler
from ivr.config import Settings
from ivr.media.replies import BUCKETS_S, ReplyTimes
from ivr.storage import write_atomic

__all__ = ["LiveRecognition", "RecognitionCollector", "status_path", "read_status"]

log = logging.getLogger(__name__)


def status_path(data_dir: Path) -> Path:
    return Path(data_dir) / "recognition-status.json"


def read_status(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


@dataclass
class LiveRecognition:
    """The node's decoding threads, who may speak to them, and how long callers waited after speaking."""

    scheduler: DecodeScheduler
    admission: Admission
    replies: ReplyTimes = field(default_factory=ReplyTimes)

    @classmethod
    def from_settings(cls, settings: Settings) -> LiveRecognition:
        scheduler = DecodeScheduler(workers=settings.asr_workers or None)
        limit = settings.asr_live_limit
        bounds = dict(initial=limit, minimum=limit, maximum=limit) if limit else dict(initial=max(4, settings.asr_warm))
        admission = Admission(scheduler.stats, reserve=settings.asr_live_reserve,
                              soft_lag_s=settings.asr_soft_lag_ms / 1000, **bounds)  # type: ignore[arg-type]
        return cls(scheduler, admission)

    def snapshot(self) -> dict[str, Any]:
        snap = self.scheduler.stats.snapshot(10.0)
        adm = self.admission
        return {
            "streams": snap.streams, "steps": adm.held, "limit": adm.limit,
            "lag_p95_s": round(snap.lag_p95_s, 3), "lag_oldest_p95_s": round(snap.lag_oldest_p95_s, 3),
            "final_p95_s": round(snap.final_p95_s, 3), "cpu_per_audio_s": round(snap.cpu_per_audio_s, 3),
            "admitted": adm.admitted, "shed": adm.shed, "shed_priority": adm.shed_priority,
            "replies": self.replies.count, "reply_max_s": round(self.replies.max_s, 3),
            "replies_over_1s": self.replies.over(1.0),
        }

    async def publish(self, path: Path, stop: asyncio.Event, every_s: float = 1.0) -> None:
        """Write `snapshot()` to `path` every `every_s` until `stop` (a failed write is logged once)."""
        failing = False
        while not stop.is_set():
            try:
                write_atomic(path, json.dumps(self.snapshot()).encode())
                failing = False
            except OSError as exc:
                if not failing:
                    log.error("cannot write the recognition status to %s: %s", path, exc)
                failing = True
            try:
                await asyncio.wait_for(stop.wait(), every_s)
            except TimeoutError:
                pass


class RecognitionCollector:
    """`/metrics` for live recognition, read at each scrape."""

    def __init__(self, live: LiveRecognition, registry: CollectorRegistry | None = None) -> None:
        self.live = live
        if registry is not None:
            registry.register(self)

    def collect(self) -> Iterator[Metric]:
        snap = self.live.snapshot()
        gauges = (
            ("ivr_asr_streams", "Utterances being decoded now", snap["streams"]),
            ("ivr_asr_steps_held", "Listening steps live recognition holds now", snap["steps"]),
            ("ivr_asr_limit", "How many steps live recognition takes at once (adapts to the lag)", snap["limit"]),
            ("ivr_asr_lag_p95_seconds", "Decoder lag p95 over 10 s, from a chunk's newest frame", snap["lag_p95_s"]),
            ("ivr_asr_lag_oldest_p95_seconds", "The same from a chunk's oldest frame", snap["lag_oldest_p95_s"]),
            ("ivr_asr_cpu_per_audio_second", "Decoder CPU seconds per audio second over 10 s",
             snap["cpu_per_audio_s"]),
        )
        for name, doc, value in gauges:
            yield GaugeMetricFamily(name, doc, value=value)
        steps = CounterMetricFamily("ivr_asr_step_decisions", "Listening steps offered to live recognition",
                                    labels=["outcome", "priority"])
        adm = self.live.admission
        steps.add_metric(["admitted", "yes"], adm.admitted_priority)
        steps.add_metric(["admitted", "no"], adm.admitted - adm.admitted_priority)
        steps.add_metric(["shed", "yes"], adm.shed_priority)
        steps.add_metric(["shed", "no"], adm.shed - adm.shed_priority)
        yield steps
        replies = self.live.replies
        cumulative, buckets = 0, []
        for bound, count in zip([*map(str, BUCKETS_S), "+Inf"], replies.counts):
            cumulative += count
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily("ivr_reply_seconds", "Callers' wait from the end of their speech to the next "
                                    "prompt", buckets=buckets, sum_value=replies.total_s)
