"""Prometheus metrics read from Redis at scrape time, so every receiver and worker process counts."""

from __future__ import annotations

import bisect
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError

from console import fleet
from console.replies import integer, mapping, number, optional_number
from receiver.kernel import keys, stats
from receiver.kernel.events import Status

NS = "recording_receiver"
ENQUEUE_SECONDS = stats.ENQUEUE_SECONDS
ARCHIVE_LATENCY_SECONDS = stats.ARCHIVE_LATENCY_SECONDS
# Every histogram series carries every one of these bounds, observed or not: series of different
# label sets must have the same `le` set for `sum by (le)` and rate() to add up.
BOUNDS = (*stats.HISTOGRAM_BUCKETS, float("inf"))

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
        snap = _read(self.redis, now)
        read = snap.hashes
        yield _counter("callbacks", "Callbacks by source, status and verdict", ["source", "status", "verdict"],
                       ((name.split("|"), count) for name, count in read[stats.CALLBACKS].items() if name.count("|") == 2))
        yield _counter("signature_failures", "Callbacks refused for their signature, by reason", ["reason"],
                       (([reason], count) for reason, count in read[stats.SIGNATURE_FAILURES].items()))
        yield _histogram("job_duration_seconds", "Job runs by source and outcome, and their duration", ["source", "outcome"],
                         read[stats.JOB_SECONDS])
        yield _counter("deletions", "Deletion jobs at Twilio by source and outcome", ["source", "outcome"],
                       ((name.split("|"), count) for name, count in read[stats.DELETIONS].items() if name.count("|") == 1))
        yield _counter("webhook_deliveries", "Webhook delivery attempts' outcomes by endpoint", ["endpoint", "outcome"],
                       ((name.split("|"), count) for name, count in read[stats.WEBHOOK_DELIVERIES].items() if name.count("|") == 1))
        yield _counter("twilio_api_responses", "Twilio answers by HTTP status, REST calls and media downloads", ["status"],
                       (([status], count) for status, count in read[stats.TWILIO_RESPONSES].items()))
        yield _histogram("twilio_rest_seconds", "Twilio REST calls by source, endpoint kind and status class, and their latency",
                         ["source", "endpoint", "status_class"], read[stats.TWILIO_REST_SECONDS])
        drops = read[stats.COUNTER_DROPS]
        yield _counter("increments_dropped", "Counter increments lost because a process's pending counters were full",
                       ["component"], (([c], drops.get(c, "0")) for c in sorted({"receiver", "worker", *drops})))
        yield from _receivers(snap.live_receivers, read[stats.SPOOL])
        recordings = GaugeMetricFamily(f"{NS}_recordings", "Recordings in the catalog by current status", labels=["status"])
        for status, count in snap.recordings.items():
            recordings.add_metric([status.value], count)
        yield recordings
        yield from _queues(self.redis, self.queue_name, now)
        yield from _reconcile(read[keys.RECONCILE_LAST])
        yield _histogram("enqueue_seconds", "Receiver's dedupe-and-enqueue round trip", ["source"], read[ENQUEUE_SECONDS])
        yield _histogram("callback_to_archived_seconds", "First callback to media archived", ["source"], read[ARCHIVE_LATENCY_SECONDS])


_HASHES = (stats.CALLBACKS, stats.SIGNATURE_FAILURES, stats.JOB_SECONDS, stats.TWILIO_RESPONSES, stats.SPOOL,
           keys.RECONCILE_LAST, ENQUEUE_SECONDS, ARCHIVE_LATENCY_SECONDS, stats.TWILIO_REST_SECONDS, stats.COUNTER_DROPS,
           stats.DELETIONS, stats.WEBHOOK_DELIVERIES)


@dataclass(frozen=True)
class _Snapshot:
    hashes: dict[str, dict[str, str]]  # by key
    live_receivers: set[str]
    recordings: dict[Status, int]


def _read(redis: Redis, now: float) -> _Snapshot:
    """Everything a scrape shows but the queues, in one round trip."""
    pipe = redis.pipeline(transaction=False)
    for key in _HASHES:
        pipe.hgetall(key)
    pipe.zrangebyscore(stats.RECEIVERS_SEEN, now - stats.RECEIVER_ALIVE_SECONDS, "+inf")
    for status in Status:
        pipe.zcard(keys.status_index(status.value))
    replies = pipe.execute()
    return _Snapshot(
        hashes={key: mapping(reply) for key, reply in zip(_HASHES, replies, strict=False)},
        live_receivers={r.decode() if isinstance(r, bytes) else str(r) for r in replies[len(_HASHES)]},
        recordings={status: integer(size) for status, size in zip(Status, replies[len(_HASHES) + 1:], strict=False)},
    )


def _receivers(live: set[str], spool: dict[str, str]) -> Iterator[Metric]:
    alive = GaugeMetricFamily(f"{NS}_receivers_alive", "Receiver processes that wrote their counters in the last 30 s")
    alive.add_metric([], len(live))
    yield alive
    depth = GaugeMetricFamily(f"{NS}_spool_depth", "Events held in a live receiver's local spool", labels=["receiver"])
    # Only live receivers': a receiver restarted under a new pid leaves its old entry behind,
    # while the spool it names (one per host) is drained, and reported, by its successor.
    for receiver, events in sorted(spool.items()):
        if receiver in live:
            depth.add_metric([receiver], number(events))
    yield depth


def _counter(name: str, doc: str, labels: list[str], values: Iterable[tuple[list[str], str]]) -> CounterMetricFamily:
    family = CounterMetricFamily(f"{NS}_{name}", doc, labels=labels)
    for label_values, count in values:
        family.add_metric(label_values, number(count))
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


def _histogram(name: str, doc: str, labels: list[str], raw: dict[str, str]) -> HistogramMetricFamily:
    """Hash fields "{label values}|{le}" (that bucket's own count) and "…|sum" as one histogram."""
    family = HistogramMetricFamily(f"{NS}_{name}", doc, labels=labels)
    counts: dict[tuple[str, ...], list[float]] = {}
    sums: dict[tuple[str, ...], float] = {}
    for field_name, value in raw.items():
        prefix, _, bound = field_name.rpartition("|")
        label_values = tuple(prefix.split("|"))
        if len(label_values) != len(labels):
            continue
        if bound == "sum":
            sums[label_values] = number(value)
            continue
        try:
            upper = float(bound)
        except ValueError:
            continue
        # A bound no longer configured counts under the next one up: still true, only coarser.
        slot = bisect.bisect_left(BOUNDS, upper)
        counts.setdefault(label_values, [0.0] * len(BOUNDS))[slot] += number(value)
    for label_values in sorted(counts.keys() | sums.keys()):
        own = counts.get(label_values, [0.0] * len(BOUNDS))
        buckets = [(_le(bound), total) for bound, total in zip(BOUNDS, accumulate(own), strict=False)]
        family.add_metric(list(label_values), buckets, sum_value=sums.get(label_values, 0.0))
    return family


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def registry_for(redis: Redis, queue_name: str) -> CollectorRegistry:
    # Our own registry: the default one would add this process's own metrics, which mean nothing
    # for a fleet and differ between console replicas.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(redis, queue_name))
    return registry


def scrape(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
