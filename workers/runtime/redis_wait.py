"""Holds a starting worker process until Redis answers, so a worker started during an outage waits instead of exiting."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from redis import ConnectionPool, Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from redis.sentinel import SentinelConnectionPool
from rq.connections import parse_connection

from receiver.kernel import logs

log = logs.get("workers.runtime.redis_wait")

FIRST_DELAY_SECONDS = 0.5
# Also how late, at most, a waiting worker notices that Redis is back.
MAX_DELAY_SECONDS = 5.0


def address(redis: Redis) -> str:
    """Where `redis` connects, for a log line: host and port (or socket, or sentinels), never credentials."""
    pool = redis.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        sentinels = ",".join(_host_port(s.connection_pool.connection_kwargs) for s in pool.sentinel_manager.sentinels)
        return f"master {pool.service_name} via sentinels {sentinels}"
    return _host_port(pool.connection_kwargs)


def _host_port(kwargs: dict[str, Any]) -> str:
    if kwargs.get("path"):
        return str(kwargs["path"])
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


def until_up(redis: Redis, stopping: Callable[[], bool], wake: threading.Event) -> bool:
    """Wait with backoff until Redis answers (True) or a stop is requested (False); says once
    that it waits. `wake` cuts a backoff short: whoever requests the stop sets it."""
    probe = _single_try_client(redis)
    delay, said = FIRST_DELAY_SECONDS, False
    try:
        while not stopping():
            if _answers(probe):
                if said:
                    log.info("Redis answers; starting", redis=address(redis))
                return not stopping()
            if not said:
                log.warning("waiting for Redis", redis=address(redis), retry_up_to_seconds=MAX_DELAY_SECONDS)
                said = True
            wake.wait(delay)
            delay = min(2 * delay, MAX_DELAY_SECONDS)
        return False
    finally:
        probe.close()


def _answers(probe: Redis) -> bool:
    try:
        return bool(probe.ping())
    except (RedisError, OSError):  # whatever the failure, the answer is "not yet"
        return False


def _single_try_client(redis: Redis) -> Redis:
    """`redis`'s connection settings without redis-py's own retries: they take about 4 s to give
    up on a closed port, and a stop request would wait for them. Rebuilt the way RQ rebuilds a
    connection for its scheduler."""
    client_class, connection_class, kwargs = parse_connection(redis)
    kwargs["retry"] = Retry(NoBackoff(), 0)  # type: ignore[no-untyped-call]
    # from_pool: the client owns the pool, so closing the probe closes its connection too (a
    # client merely given a pool leaves it open, and the socket leaked when the pool was freed).
    probe: Redis = client_class.from_pool(ConnectionPool(connection_class=connection_class, **kwargs))
    return probe
