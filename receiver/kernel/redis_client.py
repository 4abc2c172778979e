"""Builds every role's Redis client: from REDIS_URL, or through Redis Sentinel when REDIS_SENTINELS is set."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
from redis.connection import parse_url
from redis.sentinel import Sentinel

from receiver.kernel.settings import SharedSettings


def sync_redis(settings: SharedSettings, **kwargs: Any) -> redis.Redis:
    """A client of the master; `kwargs` are connection options (timeouts, health checks)."""
    if settings.redis_sentinels:
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            settings.sentinel_addresses, sentinel_kwargs=_sentinel_kwargs(settings, kwargs), **kwargs
        )
        options = _data_node_options(settings)
        client: redis.Redis = sentinel.master_for(settings.redis_sentinel_master, **options)  # type: ignore[no-untyped-call]
        return client
    return redis.Redis.from_url(_url(settings), **kwargs)


def async_redis(settings: SharedSettings, **kwargs: Any) -> redis.asyncio.Redis:
    """Like `sync_redis`, for asyncio: redis-py's own connection classes (the hot path packs its
    commands itself, in receiver/app/redis_pipe/command_pipe.py)."""
    if settings.redis_sentinels:
        sentinel = AsyncSentinel(  # type: ignore[no-untyped-call]
            settings.sentinel_addresses, sentinel_kwargs=_sentinel_kwargs(settings, kwargs), **kwargs
        )
        client: redis.asyncio.Redis = sentinel.master_for(settings.redis_sentinel_master, **_data_node_options(settings))
        return client
    return redis.asyncio.Redis.from_url(_url(settings), **kwargs)


async def aclose(client: redis.asyncio.Redis) -> None:
    """Close the client and, behind Sentinel, the connections to the sentinels it asked."""
    await client.aclose()
    pool = client.connection_pool
    if isinstance(pool, AsyncSentinelPool):
        await pool.sentinel_manager.aclose()


def _url(settings: SharedSettings) -> str:
    if not settings.redis_url:
        raise ValueError("neither REDIS_URL nor REDIS_SENTINELS is set")
    return settings.redis_url


def _sentinel_kwargs(settings: SharedSettings, kwargs: dict[str, Any]) -> dict[str, Any]:
    # The sentinels get the same socket timeouts (redis-py's default) and their own password;
    # never the data nodes' connection class or credentials.
    options = {key: value for key, value in kwargs.items() if key.startswith("socket_")}
    if settings.redis_sentinel_password:
        options["password"] = settings.redis_sentinel_password.get_secret_value()
    return options


def _data_node_options(settings: SharedSettings) -> dict[str, Any]:
    """What REDIS_URL lends the master's connections behind Sentinel: db, credentials, options."""
    if not settings.redis_url:
        return {}
    if not settings.redis_url.startswith("redis://"):
        # TLS or a socket path would need their own connection classes behind Sentinel; untested.
        raise ValueError("with REDIS_SENTINELS, REDIS_URL may only be redis://[user:password@][host]/db")
    options: dict[str, Any] = parse_url(settings.redis_url)  # type: ignore[no-untyped-call]
    for key in ("host", "port"):  # Sentinel says where the master is
        options.pop(key, None)
    return options
