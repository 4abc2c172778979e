"""Liveness and readiness: alive means the process answers; ready means Redis answers too."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    redis: Redis = request.app.state.redis
    try:
        await asyncio.wait_for(redis.ping(), timeout=1.0)
    except (RedisError, OSError, asyncio.TimeoutError) as exc:
        return JSONResponse({"status": "unavailable", "redis": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ready", "redis": "ok"})
