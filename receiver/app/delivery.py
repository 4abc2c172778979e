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

from receiver.app.enqueue import Enqueuer
from receiver.app.spool import Spool
from receiver.kernel import logs, stats
from receiver.kernel.enqueue_script import EnqueueResult
from receiver.kernel.errors import RecordingReceiverError
from receiver.kernel.events import RecordingEvent

log = logs.get("receiver.app.delivery")

SPOOLED = "spooled"
_REDIS_TROUBLE = (RedisError, OSError, asyncio.TimeoutError)


class SpoolUnavailable(RecordingReceiverError):
    """Neither Redis nor the spool took the event: the one case the receiver answers 503."""


@dataclass(slots=True)
class Delivered:
    outcome: str  # "queued", "duplicate" or "spooled"
    job_id: str | None


class Delivery:
    """Fast path straight to Redis; after a failure, new events go to the spool until Redis
    answers a ping again. The spool is then delivered oldest first, beside the live traffic:
    the catalog only moves a recording's state forward, so arrival order is not needed for
    correctness, while not spooling one event longer than necessary is."""

    def __init__(self, enqueuer: Enqueuer, spool: Spool, bound_seconds: float, redis: Redis) -> None:
        """`enqueuer` must give up after `bound_seconds` itself; the drainer's pings use it too."""
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
                result: EnqueueResult = await self._enqueuer.enqueue(event)
                return Delivered(result.outcome._value_, result.job_id)  # `_value_`: per event, see events.py
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
        """Forever: leave the detour as soon as Redis answers, and deliver the spool in order."""
        while True:
            try:
                if self._detour:
                    await asyncio.wait_for(self._redis.ping(), self._bound)
                    self._detour = False
                    log.info("redis answers again; back on the fast path")
                await self.drain_once()
            except _REDIS_TROUBLE as exc:
                log.warning("spool not drained yet", error=type(exc).__name__)
            await asyncio.sleep(interval)

    async def drain_once(self, batch: int = 500, per_call: int = 100) -> int:
        """Deliver what the spool holds, oldest first; one process per host at a time (an flock).

        Each script call carries a run of events in order and is atomic; only what Redis
        confirmed is removed, so a failure midway keeps the order, and an event delivered twice
        is only a duplicate, which the ledger absorbs.
        """
        with _try_lock(self._lock_path) as held:
            if not held:
                return 0
            delivered = 0
            while rows := await asyncio.to_thread(self._spool.oldest, batch):
                for start in range(0, len(rows), per_call):
                    run = rows[start : start + per_call]
                    await self._enqueuer.submit_in_order([RecordingEvent.from_payload(p) for _, p in run])
                    await asyncio.to_thread(self._spool.remove, [row_id for row_id, _ in run])
                    delivered += len(run)
                self._reported = None
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
