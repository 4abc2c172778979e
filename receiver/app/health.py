"""Liveness and readiness: alive means the process answers; ready means callbacks can be verified and kept."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse

from receiver.app.callbacks import Deps
from receiver.app.delivery import Delivery
from receiver.kernel.accounts import has_tokens

# Said at start-up and by /readyz: without a token every callback's signature check fails.
NO_AUTH_TOKEN = (
    "no auth token configured: set TWILIO_AUTH_TOKEN (or TWILIO_ACCOUNTS_FILE); every callback gets 403"  # noqa: S105 -- a message
)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Ready while events are kept durably: in Redis, or in the spool while Redis is away.

    Taking every receiver out of the load balancer because Redis is down would turn a recoverable
    outage into lost callbacks, so a working spool keeps the receiver ready (status "degraded").
    With no auth token it is never ready: it could only refuse callbacks.
    """
    redis: Redis = request.app.state.redis
    deps: Deps = request.app.state.deps
    delivery: Delivery = deps.delivery
    redis_state = "ok"
    try:
        await asyncio.wait_for(redis.ping(), timeout=1.0)
    except (TimeoutError, RedisError, OSError) as exc:
        redis_state = type(exc).__name__
    try:
        depth: int | str = await delivery.depth()
    except Exception as exc:
        depth = f"unavailable: {type(exc).__name__}"
    body = {"redis": redis_state, "spool": depth, "spooling": delivery.detouring}
    if not has_tokens(deps.accounts, deps.settings):
        return JSONResponse({"status": "unavailable", "auth": NO_AUTH_TOKEN, **body}, status_code=503)
    if redis_state == "ok":
        return JSONResponse({"status": "ready", **body})
    if isinstance(depth, int):
        return JSONResponse({"status": "degraded", **body})
    return JSONResponse({"status": "unavailable", **body}, status_code=503)
