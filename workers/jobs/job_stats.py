"""Writes job outcomes, durations, latencies and Twilio answers to the shared counters in Redis."""

from __future__ import annotations

from redis import Redis
from redis.exceptions import RedisError

from receiver.kernel import keys, logs, stats
from receiver.kernel.pending_counts import PendingCounts
from workers.twilio_rest.kinds import RestCall

log = logs.get("workers.jobs.job_stats")


class JobStats:
    """Best effort, never a job failure, and never a silent loss: a write that fails is kept in
    memory (bounded) and carried by the next one; anything refused is logged and counted."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._pending = PendingCounts("worker")

    def job(self, source: str, outcome: str, seconds: float) -> None:
        labels = f"{source}|{outcome}"
        self._pending.add(stats.JOBS, labels)
        self._pending.add(stats.JOBS, f"{labels}|seconds", float(seconds))
        self._pending.observe(stats.JOB_SECONDS, labels, seconds)
        self.flush()

    def deletion(self, source: str, outcome: str) -> None:
        """One deletion job's outcome at Twilio: deleted, gone, nothing_to_delete, held, refused, failed, deferred."""
        self._pending.add(stats.DELETIONS, f"{source}|{outcome}")
        self.flush()

    def archived(self, source: str, sid: str, archived_at: float) -> None:
        """Callback-to-archived latency, from when the receiver first saw the recording."""
        try:
            first_ms = self._redis.zscore(keys.RECORDINGS_INDEX, f"{source}:{sid}")
        except RedisError as exc:
            log.warning("archive latency not known: Redis did not answer", error=type(exc).__name__)
            return
        if first_ms is None:
            return
        latency = max(0.0, archived_at - float(first_ms) / 1000)
        self._pending.observe(stats.ARCHIVE_LATENCY_SECONDS, source, latency)
        self.flush()

    def twilio_response(self, status: int) -> None:
        self._pending.add(stats.TWILIO_RESPONSES, str(status))
        self.flush()

    def twilio_call(self, call: RestCall) -> None:
        """Every Twilio REST call (workers.twilio_rest.client): its answer's status and its latency."""
        if call.status is not None:
            self._pending.add(stats.TWILIO_RESPONSES, str(call.status))
        self._pending.observe(stats.TWILIO_REST_SECONDS, call.labels, call.seconds)
        self.flush()

    def flush(self) -> bool:
        dropped = self._pending.dropped_since_asked()
        if dropped:
            log.warning("counter increments dropped: memory for pending counters is full", count=dropped)
        batch = self._pending.take()
        if not batch:
            return True
        try:
            pipe = self._redis.pipeline(transaction=False)
            batch.fill(pipe)
            pipe.execute()
        except RedisError as exc:
            self._pending.give_back(batch)
            log.warning("counters not written yet; kept for the next write", error=type(exc).__name__)
            return False
        return True
