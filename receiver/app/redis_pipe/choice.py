"""Opens the transport REDIS_PIPE names: the fast pipe, or redis-py's stock asyncio client."""

from __future__ import annotations

from functools import partial

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from receiver.app.redis_pipe.command_pipe import CommandPipe
from receiver.app.redis_pipe.pipe import Pipe
from receiver.app.redis_pipe.stock_pipe import StockPipe
from receiver.app.settings import ReceiverSettings
from receiver.kernel.redis_client import aclose, async_redis


def open_pipe(settings: ReceiverSettings) -> Pipe:
    """The hot path's own connection(s), bounded by the spool's patience, not a socket timeout."""
    bound = settings.spool_after_seconds
    if settings.redis_pipe == "stock":
        # No retries: like the fast pipe, a call that failed is spooled, never sent twice by the
        # client behind the Enqueuer's back (a second run would turn "queued" into "duplicate").
        client = async_redis(settings, socket_timeout=bound, socket_connect_timeout=2.0, retry=Retry(NoBackoff(), 0))
        return StockPipe(client)
    client = async_redis(settings, socket_connect_timeout=2.0)
    return CommandPipe(client.connection_pool, bound, on_close=partial(aclose, client))
