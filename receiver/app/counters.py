"""Counts callbacks that never reach the queue (rejected, ignored) and enqueue latencies, written in batches."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from receiver.kernel import logs, stats
from receiver.kernel.events import RecordingEvent
from receiver.kernel.pending_counts import MAX_FIELDS, PendingCounts

log = logs.get("receiver.app.counters")
FLUSH_SECONDS = 5.0
# Receivers not seen for this long are forgotten, their spool entries with them: a restart
# comes back under a new pid, and the spool file it names is drained by its successor.
FORGET_RECEIVER_SECONDS = 3600
_FORGET = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1000)
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
  redis.call('HDEL', KEYS[2], unpack(gone))
end
return #gone
"""


class Counters:
    """Increments are gathered in memory and written every few seconds in one round trip.

    One write per request cost as much as the request, and under a burst of slow, disconnecting
    clients those writes timed out and their increments were lost. Now a failed write is given
    back and carried by the next one; memory is bounded (receiver.kernel.pending_counts), and anything it
    ever refuses is logged at warning with its count and counted in Redis.
    """

    def __init__(self, redis: Redis, name: str | None = None, max_fields: int = MAX_FIELDS) -> None:
        self._redis = redis
        self._pending = PendingCounts("receiver", max_fields)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._spool_depth: Callable[[], Awaitable[int]] | None = None

    def report_spool(self, depth: Callable[[], Awaitable[int]]) -> None:
        """Each flush also writes this receiver's spool depth, so a spool that is not draining shows."""
        self._spool_depth = depth

    def observe_batch(self, events: Sequence[RecordingEvent], seconds: float) -> None:
        """One Redis round trip that carried `events`: each of them waited `seconds` for it."""
        per_source: dict[str, int] = {}
        for event in events:
            source = event.source._value_  # not `.value`, a Python-level property: runs per event
            per_source[source] = per_source.get(source, 0) + 1
        for source, count in per_source.items():
            self._pending.observe(stats.ENQUEUE_SECONDS, source, seconds, count)

    async def count(self, source: str, verdict: str, signature_reason: str | None = None) -> None:
        """Never raises and never waits on Redis: losing a counter must not turn a 4xx into a 5xx."""
        now = time.time()
        field = stats.callback_field(source, "-", verdict)
        self._pending.add(stats.CALLBACKS, field)
        self._pending.add(stats.minute("callbacks", now), field, ttl=stats.MINUTE_TTL_SECONDS)
        if signature_reason:
            self._pending.add(stats.SIGNATURE_FAILURES, signature_reason)
            self._pending.add(stats.minute("signature_failures", now), signature_reason, ttl=stats.MINUTE_TTL_SECONDS)

    async def flush(self) -> bool:
        """Writes what is pending (and that this receiver is alive); True when Redis took it."""
        dropped = self._pending.dropped_since_asked()
        if dropped:
            log.warning("counter increments dropped: memory for pending counters is full", count=dropped)
        depth = await self._read_spool_depth()
        batch = self._pending.take()
        now = time.time()
        try:
            pipe = self._redis.pipeline(transaction=False)
            batch.fill(pipe)
            if depth is not None:
                pipe.hset(stats.SPOOL, self.name, depth)
            pipe.zadd(stats.RECEIVERS_SEEN, {self.name: now})
            pipe.eval(_FORGET, 2, stats.RECEIVERS_SEEN, stats.SPOOL, now - FORGET_RECEIVER_SECONDS)
            await pipe.execute()
        except (RedisError, OSError) as exc:
            self._pending.give_back(batch)
            log.info("counters not written yet; kept for the next flush", error=type(exc).__name__, fields=len(self._pending))
            return False
        return True

    async def close(self) -> None:
        """The last flush, at shutdown: what Redis does not take now is lost, and said so."""
        if not await self.flush():
            lost = self._pending.counts_held()
            if lost:
                log.warning("counter increments dropped at shutdown: Redis did not take them", count=lost)

    async def _read_spool_depth(self) -> int | None:
        if self._spool_depth is None:
            return None
        try:
            return await self._spool_depth()
        except Exception as exc:
            log.info("spool depth not known", error=type(exc).__name__)
            return None

    async def run_flusher(self, interval: float = FLUSH_SECONDS) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.flush()
