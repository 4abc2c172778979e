"""Counts the callbacks that never reach the queue (rejected, ignored), best effort."""

from __future__ import annotations

import asyncio
import time
from typing import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from receiver import logs, stats
from receiver.events import RecordingEvent

log = logs.get("receiver.counters")


class Counters:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        # Enqueue latencies are gathered in memory and written every few seconds: one write per
        # request would cost as much as the enqueue it measures.
        self._latency: dict[str, float] = {}

    def observe_batch(self, events: Sequence[RecordingEvent], seconds: float) -> None:
        """One Redis round trip that carried `events`: each of them waited `seconds` for it."""
        per_source: dict[str, int] = {}
        for event in events:
            source = event.source._value_  # not `.value`, a Python-level property: runs per event
            per_source[source] = per_source.get(source, 0) + 1
        for source, count in per_source.items():
            bucket, total = stats.bucket_field(source, seconds), stats.sum_field(source)
            self._latency[bucket] = self._latency.get(bucket, 0.0) + count
            self._latency[total] = self._latency.get(total, 0.0) + seconds * count

    async def flush(self) -> None:
        pending, self._latency = self._latency, {}
        if not pending:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for field, value in pending.items():
                pipe.hincrbyfloat(stats.ENQUEUE_SECONDS, field, value)
            await pipe.execute()
        except (RedisError, OSError):
            for field, value in pending.items():  # keep them for the next flush
                self._latency[field] = self._latency.get(field, 0.0) + value

    async def run_flusher(self, interval: float = 5.0) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.flush()

    async def count(self, source: str, verdict: str, signature_reason: str | None = None) -> None:
        """Never raises: losing a counter must not turn a 4xx into a 5xx."""
        field = stats.callback_field(source, "-", verdict)
        bucket = stats.minute("callbacks", time.time())
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hincrby(stats.CALLBACKS, field, 1)
            pipe.hincrby(bucket, field, 1)
            pipe.expire(bucket, stats.MINUTE_TTL_SECONDS)
            if signature_reason:
                pipe.hincrby(stats.SIGNATURE_FAILURES, signature_reason, 1)
                sig_bucket = stats.minute("signature_failures", time.time())
                pipe.hincrby(sig_bucket, signature_reason, 1)
                pipe.expire(sig_bucket, stats.MINUTE_TTL_SECONDS)
            await pipe.execute()
        except (RedisError, OSError) as exc:
            log.debug("counter not recorded", error=type(exc).__name__)
