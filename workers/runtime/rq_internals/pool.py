"""Runs many ThreadWorkers in one process: starts them, renews their leases, revives them, stops them."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.serializers import JSONSerializer

from receiver.kernel import logs
from workers.runtime import redis_wait
from workers.runtime.rq_internals.job_allowlist import AllowlistedJob
from workers.runtime.rq_internals.thread_worker import DEQUEUE_SLICE_SECONDS, ThreadScheduler, ThreadWorker

log = logs.get("workers.runtime.rq_internals.pool")

REVIVE_SECONDS = 2.0
# After a stop request, how long idle threads get to leave through RQ's own teardown (a dequeue
# slice, then RQ's goodbye and unsubscribe) before the pool says goodbye for them.
STOP_GRACE_SECONDS = DEQUEUE_SLICE_SECONDS + 3.0
SCHEDULER_STOP_SECONDS = 5.0


def worker_name(slot: int, generation: int) -> str:
    """`host.pid.slot` for `rq info`; a slot's replacement workers add `-1`, `-2`, …"""
    name = f"{socket.gethostname()}.{os.getpid()}.{slot}"
    return name if generation == 0 else f"{name}-{generation}"


class _Slot:
    """One worker thread; replaced by a fresh worker if it dies (a Redis outage can end one)."""

    def __init__(self, pool: ThreadPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.generation = 0
        self.worker: ThreadWorker | None = None
        self.thread: threading.Thread | None = None
        self.revive_at = 0.0

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    @property
    def busy(self) -> bool:
        return self.worker is not None and self.worker.busy

    def start(self) -> None:
        """A new worker in a new thread; building one talks to Redis, so on failure `revive_if_dead` tries again."""
        try:
            worker = self.pool.new_worker(self._free_name())
        except RedisError as exc:
            self.revive_at = time.monotonic() + REVIVE_SECONDS
            log.warning("worker thread not started yet", slot=self.index, error=type(exc).__name__)
            return
        self.worker = worker
        self.generation += 1
        if self.pool.stopping:  # the signal came while the worker was being built: never start it
            return
        # Daemon: a thread stuck reconnecting to a Redis that is gone must not hold the process;
        # the pool deregisters such a worker itself before it leaves.
        self.thread = threading.Thread(target=self._work, name=f"rq-{self.index}", daemon=True)
        self.revive_at = 0.0
        self.thread.start()

    def _free_name(self) -> str:
        """RQ refuses to register a name a live worker holds: this slot's dead worker until its
        registration lapses, or a previous run's when the pid comes round again (a container's)."""
        while ThreadWorker.name_in_use(self.pool.redis, worker_name(self.index, self.generation)):
            self.generation += 1
        return worker_name(self.index, self.generation)

    def _work(self) -> None:
        assert self.worker is not None
        try:
            self.worker.work(burst=self.pool.burst, logging_level=self.pool.logging_level)
        except RedisError as exc:  # e.g. teardown with Redis away; the pool replaces this worker
            log.warning("worker thread stopped by a Redis error", worker=self.worker.name, error=type(exc).__name__)
        finally:
            self.pool.wake.set()

    def revive_if_dead(self) -> None:
        if self.alive or self.pool.burst:
            return
        now = time.monotonic()
        if self.revive_at == 0.0:
            self.revive_at = now + REVIVE_SECONDS
            log.warning("worker thread ended unexpectedly; replacing it", worker=self.worker.name if self.worker else None)
        elif now >= self.revive_at:
            self.start()

    def deregister_if_stuck(self) -> None:
        """A thread that has not ended never will before the process does: say its goodbye."""
        if not self.alive or self.worker is None:
            return
        try:
            self.worker.deregister()
        except RedisError as exc:  # its registration lapses within a lease anyway
            log.warning("worker not deregistered", worker=self.worker.name, error=type(exc).__name__)


class ThreadPool:
    def __init__(self, redis: Redis, queue_name: str, threads: int, with_scheduler: bool, lease_seconds: int = 60,
                 maintenance_seconds: int = 30) -> None:
        self.redis = redis
        # The queue's job class serves RQ's registry maintenance, which may run an abandoned
        # job's failure callback: the allowlisted job has none.
        self.queue = Queue(queue_name, connection=redis, serializer=JSONSerializer, job_class=AllowlistedJob)
        self.threads = threads
        self.lease_seconds = lease_seconds
        self.maintenance_seconds = maintenance_seconds
        self.scheduler = ThreadScheduler([self.queue], connection=redis, serializer=JSONSerializer) if with_scheduler else None
        self.burst = False
        self.logging_level = "INFO"
        self.wake = threading.Event()  # set on a stop request or when a worker thread ends
        self.stopping = False
        self._stop_by = 0.0
        self._signals = 0
        self._slots: list[_Slot] = []

    def new_worker(self, name: str) -> ThreadWorker:
        return ThreadWorker(
            [self.queue], name=name, connection=self.redis, serializer=JSONSerializer,
            maintenance_interval=self.maintenance_seconds, lease_seconds=self.lease_seconds,
        )

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """First signal: finish current jobs, then stop. Second: leave now; RQ retries what ran."""
        self._signals += 1
        if self._signals > 1:
            log.warning("cold shutdown: running jobs will be retried by RQ")
            os._exit(1)
        log.info("warm shutdown: finishing running jobs")
        self.stopping = True
        self._stop_by = time.monotonic() + STOP_GRACE_SECONDS
        for slot in self._slots:
            if slot.worker is not None:
                slot.worker.request_warm_stop()
        self.wake.set()

    def run(self, burst: bool = False, logging_level: str = "INFO", on_connected: Callable[[], None] | None = None) -> int:
        """Until stopped (or, in burst mode, until the queue is empty); the jobs that succeeded.
        `on_connected` runs once Redis answers, before any worker starts."""
        self.burst, self.logging_level = burst, logging_level
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        if not redis_wait.until_up(self.redis, lambda: self.stopping, self.wake):
            log.info("stopped while waiting for Redis")
            return 0
        if on_connected is not None:
            on_connected()
        self._start()
        beat_every = max(1.0, self.lease_seconds / 4)
        while self._keep_running(burst):
            self.wake.wait(min(beat_every, 1.0))
            self.wake.clear()
            for slot in self._slots:
                self._renew(slot)
                if not self.stopping:
                    slot.revive_if_dead()
            if not self.stopping:
                self._keep_scheduler()
        self._stop_scheduler()
        for slot in self._slots:
            slot.deregister_if_stuck()
        return sum(slot.worker.successful_job_count for slot in self._slots if slot.worker is not None)

    def _start(self) -> None:
        self._keep_scheduler()
        self._slots = [_Slot(self, i) for i in range(self.threads)]
        for slot in self._slots:
            slot.start()
        names = [slot.worker.name for slot in self._slots if slot.worker is not None]
        log.info("workers started", workers=names, queue=self.queue.name, scheduler=self.scheduler is not None)

    def _keep_running(self, burst: bool) -> bool:
        alive = [slot for slot in self._slots if slot.alive]
        if not self.stopping:
            return bool(alive) or not burst
        if any(slot.busy for slot in alive):
            # Running jobs finish; the grace for idle threads counts from the last one's end.
            self._stop_by = time.monotonic() + STOP_GRACE_SECONDS
            return True
        return bool(alive) and time.monotonic() < self._stop_by

    @staticmethod
    def _renew(slot: _Slot) -> None:
        """A lease that cannot be renewed while Redis is away only means RQ may retry that job
        later (its effects are idempotent); it must never take the pool down."""
        if slot.worker is None:
            return
        try:
            slot.worker.renew_lease()
        except RedisError as exc:
            log.warning("lease not renewed", worker=slot.worker.name, error=type(exc).__name__)

    def _keep_scheduler(self) -> None:
        """Hold the scheduler lock if nobody else does; another host's scheduler may own it."""
        if self.scheduler is None or self.scheduler.alive:
            return
        try:
            self.scheduler.acquire_locks(auto_start=True)  # type: ignore[no-untyped-call]
        except Exception as exc:  # Redis away: try again on the next beat
            log.warning("scheduler lock not acquired", error=type(exc).__name__)

    def _stop_scheduler(self) -> None:
        """Release the scheduler lock now, so another process's scheduler takes over at once
        rather than when the lock lapses (a minute)."""
        scheduler = self.scheduler
        if scheduler is None:
            return
        if scheduler.alive:
            scheduler.request_stop()  # type: ignore[no-untyped-call]
            scheduler._thread.join(timeout=SCHEDULER_STOP_SECONDS)
        if scheduler.alive or scheduler.acquired_locks:
            # Stuck on Redis, or ended by an error while holding the lock: RQ's stop() for it.
            try:
                scheduler.stop()  # type: ignore[no-untyped-call]
            except RedisError as exc:
                log.warning("scheduler lock not released", error=type(exc).__name__)
