"""An endpoint's health: its failing spell, and its disabling once the spell outlasts WEBHOOK_DISABLE_AFTER."""

from __future__ import annotations

from redis import Redis

from receiver.kernel import webhook_log
from workers.settings import WorkerSettings


def succeeded(redis: Redis, name: str, now: float) -> None:
    pipe = redis.pipeline(transaction=True)
    pipe.hset(webhook_log.endpoint_key(name), "last_success_at", now)
    pipe.hdel(webhook_log.endpoint_key(name), "failing_since", "failures")
    pipe.execute()


def failed(redis: Redis, settings: WorkerSettings, name: str, now: float, reason: str) -> bool:
    """Count a failed attempt; True when this one disabled the endpoint: every attempt failed for
    WEBHOOK_DISABLE_AFTER or longer (one success in between starts the spell over)."""
    key = webhook_log.endpoint_key(name)
    pipe = redis.pipeline(transaction=True)
    pipe.hsetnx(key, "failing_since", now)
    pipe.hincrby(key, "failures", 1)
    pipe.hset(key, "last_failure", reason)
    pipe.hget(key, "failing_since")
    since = float(pipe.execute()[-1] or now)
    if now - since < settings.webhook_disable_after_seconds:
        return False
    if not redis.hsetnx(key, "disabled_at", now):
        return False  # disabled already, by this spell's earlier attempt or another worker
    redis.hset(key, "disabled_reason", f"every attempt failed for {round((now - since) / 3600, 1)} h (last: {reason})")
    return True
