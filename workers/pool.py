"""Runs many ThreadWorkers in one process: starts them, renews their leases, revives them, stops them."""

from __future__ import annotations

import os
import signal
import threading
import time
from types import FrameType

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.serializers import JSONSerializer

from receiver import logs
from workers.thread_worker import ThreadScheduler, ThreadWorker

log = logs.get("workers.pool")


class _Slot:
    """One worker thread; replaced by a fresh worker if it dies (a Redis outage can end one)."""

    def __init__(self, pool: ThreadPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.worker = pool.new_worker()
        # Daemon: once no job runs, a stopping process need not wait for idle threads, which may
        # be stuck reconnecting to a Redis that is already gone.
        self.thread = threading.Thread(target=self._work, name=f"rq-{index}", daemon=True)
        self.revive_at = 0.0

    def start(self) -> None:
        self.thread.start()

    def _work(self) -> None:
        try:
            self.worker.work(burst=self.pool.burst, logging_level=self.pool.logging_level)
        except RedisError as exc:  # e.g. teardown with Redis away; the pool replaces this worker
            log.warning("worker thread stopped by a Redis error", worker=self.worker.name, error=type(exc).__name__)
        finally:
            self.pool.wake.set()

    def revive_if_dead(self) -> None:
        if self.thread.is_alive() or self.pool.burst:
            return
        now = time.monotonic()
        if self.revive_at == 0.0:
            self.revive_at = now + 2.0
            log.warning("worker thread ended unexpectedly; replacing it", worker=self.worker.name)
        elif now >= self.revive_at:
            try:
                worker = self.pool.new_worker()  # registers with Redis, so it can fail too
            except RedisError as exc:
                self.revive_at = now + 2.0
                log.warning("worker thread not replaced yet", error=type(exc).__name__)
                return
            self.worker = worker
            self.thread = threading.Thread(target=self._work, name=f"rq-{self.index}", daemon=True)
            self.revive_at = 0.0
            self.start()


class ThreadPool:
    def __init__(self, redis: Redis, queue_name: str, threads: int, with_scheduler: bool, lease_seconds: int = 60,
                 maintenance_seconds: int = 30) -> None:
        self.redis = redis
        self.queue = Queue(queue_name, connection=redis, serializer=JSONSerializer)
        self.threads = threads
        self.lease_seconds = lease_seconds
        self.maintenance_seconds = maintenance_seconds
        self.scheduler = ThreadScheduler([self.queue], connection=redis, serializer=JSONSerializer) if with_scheduler else None
        self.burst = False
        self.logging_level = "INFO"
        self.wake = threading.Event()  # set on a stop request or when a worker thread ends
        self._stopping = False
        self._signals = 0
        self._slots: list[_Slot] = []

    def new_worker(self) -> ThreadWorker:
        worker = ThreadWorker(
            [self.queue], connection=self.redis, serializer=JSONSerializer, maintenance_interval=self.maintenance_seconds
        )
        worker.lease_seconds = self.lease_seconds
        return worker

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """First signal: finish current jobs, then stop. Second: leave now; RQ retries what ran."""
        self._signals += 1
        if self._signals > 1:
            log.warning("cold shutdown: running jobs will be retried by RQ")
            os._exit(1)
        log.info("warm shutdown: finishing running jobs")
        self._stopping = True
        for slot in self._slots:
            slot.worker.request_warm_stop()
        self.wake.set()

    def run(self, burst: bool = False, logging_level: str = "INFO") -> int:
        self.burst, self.logging_level = burst, logging_level
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        self._keep_scheduler()
        self._slots = [_Slot(self, i) for i in range(self.threads)]
        for slot in self._slots:
            slot.start()
        log.info("workers started", threads=self.threads, queue=self.queue.name, scheduler=self.scheduler is not None)
        beat_every = max(1.0, self.lease_seconds / 4)
        while self._keep_running(burst):
            self.wake.wait(min(beat_every, 1.0))
            self.wake.clear()
            for slot in self._slots:
                self._renew(slot)
                if not self._stopping:
                    slot.revive_if_dead()
            if not self._stopping:
                self._keep_scheduler()
        self._stop_scheduler()
        return sum(slot.worker.successful_job_count for slot in self._slots)

    def _keep_running(self, burst: bool) -> bool:
        alive = [slot for slot in self._slots if slot.thread.is_alive()]
        if self._stopping:
            return any(slot.worker.busy for slot in alive)  # finish running jobs, then go
        return bool(alive) or not burst

    @staticmethod
    def _renew(slot: _Slot) -> None:
        """A lease that cannot be renewed while Redis is away only means RQ may retry that job
        later (its effects are idempotent); it must never take the pool down."""
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
        if self.scheduler is not None and self.scheduler.alive:
            self.scheduler.request_stop()  # type: ignore[no-untyped-call]
            self.scheduler._thread.join(timeout=5)
