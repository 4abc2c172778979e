"""Gets a verified event into Redis, or into the local spool when Redis cannot take it in time."""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError

from receiver import logs, stats
from receiver.enqueue import Enqueuer, EnqueueResult, Outcome
from receiver.events import RecordingEvent
from receiver.spool import Spool

log = logs.get("receiver.delivery")

SPOOLED = "spooled"
_REDIS_TROUBLE = (RedisError, OSError, asyncio.TimeoutError)


class SpoolUnavailable(Exception):
    """Neither Redis nor the spool took the event: the one case the receiver answers 503."""


@dataclass(frozen=True, slots=True)
class Delivered:
    outcome: str  # "queued", "duplicate" or "spooled"
    job_id: str | None


class Delivery:
    """Fast path straight to Redis; after a failure, everything goes to the spool until it drains.

    Sending new events to the spool while it holds older ones keeps delivery in arrival order.
    """

    def __init__(self, enqueuer: Enqueuer, spool: Spool, bound_seconds: float, redis: Redis) -> None:
        self._enqueuer = enqueuer
        self._spool = spool
        self._bound = bound_seconds
        self._redis = redis
        self._detour = False  # True while this process sends events to the spool
        self._lock_path = spool.path.with_suffix(".lock")
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._reported: int | None = 0

    @property
    def detouring(self) -> bool:
        return self._detour

    async def deliver(self, event: RecordingEvent) -> Delivered:
        if not self._detour:
            try:
                result: EnqueueResult = await asyncio.wait_for(self._enqueuer.submit(event), self._bound)
                return Delivered(result.outcome.value, result.job_id)
            except _REDIS_TROUBLE as exc:
                self._detour = True
                log.error("redis did not take the event; spooling", sid=event.sid, error=type(exc).__name__)
        await self._to_spool(event)
        return Delivered(SPOOLED, None)

    async def _to_spool(self, event: RecordingEvent) -> None:
        try:
            await asyncio.to_thread(self._spool.put, event.to_payload())
        except Exception as exc:
            log.critical("spool write failed", sid=event.sid, error=type(exc).__name__)
            raise SpoolUnavailable() from exc

    async def run_drainer(self, interval: float = 0.5) -> None:
        """Forever: deliver spooled events in order once Redis answers again."""
        while True:
            try:
                await self.drain_once()
            except _REDIS_TROUBLE as exc:
                log.warning("spool not drained yet", error=type(exc).__name__)
            await asyncio.sleep(interval)

    async def drain_once(self, batch: int = 200) -> int:
        """One pass; only one process per host drains at a time (an flock), the others wait."""
        with _try_lock(self._lock_path) as held:
            if not held:
                return 0
            delivered = 0
            while rows := await asyncio.to_thread(self._spool.oldest, batch):
                self._reported = None
                for row_id, payload in rows:
                    result = await asyncio.wait_for(self._enqueuer.submit(RecordingEvent.from_payload(payload)), 5.0)
                    await asyncio.to_thread(self._spool.remove, [row_id])
                    delivered += 1
                    if result.outcome is Outcome.DUPLICATE:
                        log.info("spooled event was a duplicate", sid=payload.get("sid"))
            if self._detour:
                await self._redis.ping()  # an empty spool alone does not prove Redis is back
                self._detour = False
            if self._reported != 0:
                await self._redis.hset(stats.SPOOL, self.name, 0)
                self._reported = 0
            if delivered:
                log.info("spool drained", delivered=delivered)
            return delivered

    async def depth(self) -> int:
        return await asyncio.to_thread(self._spool.depth)


class _try_lock:
    """Non-blocking exclusive flock on a file next to the spool."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd = -1

    def __enter__(self) -> bool:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)  # closing releases the lock
