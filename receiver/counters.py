"""Counts the callbacks that never reach the queue (rejected, ignored), best effort."""

from __future__ import annotations

import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from receiver import logs, stats

log = logs.get("receiver.counters")


class Counters:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

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
