"""Writes job outcomes, durations, latencies and Twilio answers to the shared counters in Redis."""

from __future__ import annotations

from typing import Callable

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError

from receiver import keys, logs, stats

log = logs.get("workers.job_stats")


class JobStats:
    """Best effort: a counter that cannot be written is logged, never a job failure."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def job(self, source: str, outcome: str, seconds: float) -> None:
        self._write(lambda pipe: (
            pipe.hincrby(stats.JOBS, f"{source}|{outcome}", 1),
            pipe.hincrbyfloat(stats.JOBS, f"{source}|{outcome}|seconds", seconds),
        ))

    def archived(self, source: str, sid: str, archived_at: float) -> None:
        """Callback-to-archived latency, from when the receiver first saw the recording."""
        first_ms = self._redis.zscore(keys.RECORDINGS_INDEX, f"{source}:{sid}")
        if first_ms is None:
            return
        latency = max(0.0, archived_at - float(first_ms) / 1000)
        self._write(lambda pipe: self._observe(pipe, stats.ARCHIVE_LATENCY_SECONDS, source, latency))

    def twilio_response(self, status: int) -> None:
        self._write(lambda pipe: pipe.hincrby(stats.TWILIO_RESPONSES, str(status), 1))

    @staticmethod
    def _observe(pipe: Pipeline, key: str, source: str, value: float) -> None:
        pipe.hincrby(key, stats.bucket_field(source, value), 1)
        pipe.hincrbyfloat(key, stats.sum_field(source), value)

    def _write(self, fill: Callable[[Pipeline], object]) -> None:
        try:
            pipe = self._redis.pipeline(transaction=False)
            fill(pipe)
            pipe.execute()
        except RedisError as exc:
            log.warning("counter not written", error=type(exc).__name__)
