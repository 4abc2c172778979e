"""Prometheus metrics read from Redis at scrape time, so every receiver and worker process counts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError

from console import fleet
from console.replies import integer, mapping, number, optional_number
from receiver import keys, stats
from receiver.events import Status

NS = "recording_receiver"
ENQUEUE_SECONDS = stats.ENQUEUE_SECONDS
ARCHIVE_LATENCY_SECONDS = stats.ARCHIVE_LATENCY_SECONDS

__all__ = ["CONTENT_TYPE_LATEST", "RedisCollector", "registry_for", "scrape"]


class RedisCollector(Collector):
    """State lives in Redis, not in this process, which is what makes it right with many processes."""

    def __init__(self, redis: Redis, queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name

    def describe(self) -> Iterable[Metric]:
        return []  # Registering must not touch Redis.

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(f"{NS}_redis_up", "1 when the console could read Redis for this scrape")
        try:
            families = list(self._families())
        except (RedisError, OSError):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[Metric]:
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        for key in (stats.CALLBACKS, stats.SIGNATURE_FAILURES, stats.JOBS, stats.TWILIO_RESPONSES, stats.SPOOL,
                    keys.RECONCILE_LAST, ENQUEUE_SECONDS, ARCHIVE_LATENCY_SECONDS):
            pipe.hgetall(key)
        for status in Status:
            pipe.zcard(keys.status_index(status.value))
        replies = pipe.execute()
        callbacks, signatures, jobs, twilio, spool, reconcile, enqueue, archive = (mapping(r) for r in replies[:8])
        yield _counter("callbacks", "Callbacks by source, status and verdict", ["source", "status", "verdict"],
                       ((name.split("|"), count) for name, count in callbacks.items() if name.count("|") == 2))
        yield _counter("signature_failures", "Callbacks refused for their signature, by reason", ["reason"],
                       (([reason], count) for reason, count in signatures.items()))
        yield _job_summary(jobs)
        yield _counter("twilio_api_responses", "Twilio REST responses by HTTP status", ["status"],
                       (([status], count) for status, count in twilio.items()))
        recordings = GaugeMetricFamily(f"{NS}_recordings", "Recordings in the catalog by current status", labels=["status"])
        for status, count in zip(Status, replies[8:]):
            recordings.add_metric([status.value], integer(count))
        yield recordings
        yield from _queues(self.redis, self.queue_name, now)
        spool_depth = GaugeMetricFamily(f"{NS}_spool_depth", "Events held in a receiver's local spool", labels=["receiver"])
        for receiver, depth in spool.items():
            spool_depth.add_metric([receiver], number(depth))
        yield spool_depth
        yield from _reconcile(reconcile)
        yield _histogram("enqueue_seconds", "Receiver's dedupe-and-enqueue round trip", enqueue)
        yield _histogram("callback_to_archived_seconds", "First callback to media archived", archive)


def _counter(name: str, doc: str, labels: list[str], values: Iterable[tuple[list[str], str]]) -> CounterMetricFamily:
    family = CounterMetricFamily(f"{NS}_{name}", doc, labels=labels)
    for label_values, count in values:
        family.add_metric(label_values, number(count))
    return family


def _job_summary(raw: dict[str, str]) -> SummaryMetricFamily:
    family = SummaryMetricFamily(f"{NS}_job_duration_seconds", "Job runs by source and outcome, and their duration",
                                 labels=["source", "outcome"])
    for name, count in raw.items():
        parts = name.split("|")
        if len(parts) == 2:
            family.add_metric(parts, count_value=integer(count), sum_value=number(raw.get(f"{name}|seconds")))
    return family


def _queues(redis: Redis, queue_name: str, now: float) -> Iterator[Metric]:
    state = fleet.queue_state(redis, queue_name, now)
    depth = GaugeMetricFamily(f"{NS}_queue_jobs", "Jobs by queue and state", labels=["queue", "state"])
    for label, value in (("waiting", state.waiting), ("started", state.started), ("scheduled", state.scheduled),
                         ("failed", state.failed), ("deferred", state.deferred)):
        depth.add_metric([state.name, label], value)
    yield depth
    age = GaugeMetricFamily(f"{NS}_queue_oldest_job_age_seconds", "Age of the oldest waiting job (0 when none)", labels=["queue"])
    age.add_metric([state.name], state.oldest_waiting_age or 0.0)
    yield age
    workers = fleet.workers(redis)
    alive = GaugeMetricFamily(f"{NS}_workers", "Live RQ workers by state", labels=["state"])
    for worker_state in sorted({w.state for w in workers} | {"busy", "idle"}):
        alive.add_metric([worker_state], sum(1 for w in workers if w.state == worker_state))
    yield alive


def _reconcile(raw: dict[str, str]) -> Iterator[Metric]:
    if not raw:
        return
    at = optional_number(raw.get("at"))
    if at is not None:
        stamp = GaugeMetricFamily(f"{NS}_reconcile_last_pass_timestamp_seconds", "When the reconciler's last pass ended")
        stamp.add_metric([], at)
        yield stamp
    counts = GaugeMetricFamily(f"{NS}_reconcile_last_pass_recordings", "The last pass's counts", labels=["kind"])
    for kind in ("seen", "missing", "queued", "errors"):
        if kind in raw:
            counts.add_metric([kind], number(raw[kind]))
    yield counts
    missing = GaugeMetricFamily(f"{NS}_reconcile_last_pass_missing", "Recordings the last pass found missing, by source",
                                labels=["source"])
    for source, value in _per_source(raw).items():
        if isinstance(value, dict) and "missing" in value:
            missing.add_metric([source], number(value["missing"]))
    yield missing


def _per_source(raw: dict[str, str]) -> dict[str, object]:
    """Per-source results, whether kept in one JSON field or one JSON field per source."""
    found: dict[str, object] = {}
    for name, value in raw.items():
        try:
            decoded = json.loads(value)
        except ValueError:
            continue
        if isinstance(decoded, dict) and all(isinstance(v, dict) for v in decoded.values()) and decoded:
            found.update(decoded)
        elif isinstance(decoded, dict):
            found[name] = decoded
    return found


def _histogram(name: str, doc: str, raw: dict[str, str]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(f"{NS}_{name}", doc, labels=["source"])
    per_source: dict[str, dict[float, float]] = {}
    sums: dict[str, float] = {}
    for field_name, value in raw.items():
        source, _, bound = field_name.rpartition("|")
        if bound == "sum":
            sums[source] = number(value)
            continue
        try:
            per_source.setdefault(source, {})[float(bound)] = number(value)
        except ValueError:
            continue
    for source, buckets in sorted(per_source.items()):
        cumulative: list[tuple[str, float]] = []
        running = 0.0
        for upper in sorted(buckets):
            running += buckets[upper]
            cumulative.append(("+Inf" if upper == float("inf") else repr(upper), running))
        if not cumulative or cumulative[-1][0] != "+Inf":
            cumulative.append(("+Inf", running))
        family.add_metric([source], cumulative, sum_value=sums.get(source, 0.0))
    return family


def registry_for(redis: Redis, queue_name: str) -> CollectorRegistry:
    # Our own registry: the default one would add this process's own metrics, which mean nothing
    # for a fleet and differ between console replicas.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(redis, queue_name))
    return registry


def scrape(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
