"""Liveness and readiness: alive means the process answers; ready means Redis answers too."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse

from receiver.delivery import Delivery


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Ready while events are kept durably: in Redis, or in the spool while Redis is away.

    Taking every receiver out of the load balancer because Redis is down would turn a recoverable
    outage into lost callbacks, so a working spool keeps the receiver ready (status "degraded").
    """
    redis: Redis = request.app.state.redis
    delivery: Delivery = request.app.state.deps.delivery
    redis_state = "ok"
    try:
        await asyncio.wait_for(redis.ping(), timeout=1.0)
    except (RedisError, OSError, asyncio.TimeoutError) as exc:
        redis_state = type(exc).__name__
    try:
        depth: int | str = await delivery.depth()
    except Exception as exc:
        depth = f"unavailable: {type(exc).__name__}"
    body = {"redis": redis_state, "spool": depth, "spooling": delivery.detouring}
    if redis_state == "ok":
        return JSONResponse({"status": "ready", **body})
    if isinstance(depth, int):
        return JSONResponse({"status": "degraded", **body})
    return JSONResponse({"status": "unavailable", **body}, status_code=503)
