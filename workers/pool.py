"""Runs many ThreadWorkers in one process: starts them, renews their leases, stops them on signal."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from receiver import logs
from workers.thread_worker import ThreadScheduler, ThreadWorker

log = logs.get("workers.pool")


class ThreadPool:
    def __init__(self, redis: Redis, queue_name: str, threads: int, with_scheduler: bool, lease_seconds: int = 60,
                 maintenance_seconds: int = 30) -> None:
        self.redis = redis
        self.queue = Queue(queue_name, connection=redis, serializer=JSONSerializer)
        self.workers = [
            ThreadWorker([self.queue], connection=redis, serializer=JSONSerializer, maintenance_interval=maintenance_seconds)
            for _ in range(threads)
        ]
        for worker in self.workers:
            worker.lease_seconds = lease_seconds
        self.scheduler = ThreadScheduler([self.queue], connection=redis, serializer=JSONSerializer) if with_scheduler else None
        self._beat_every = max(1.0, lease_seconds / 4)
        self._stop = threading.Event()
        self._wake = threading.Event()  # set on a stop request or when the last worker ends
        self._signals = 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """First signal: finish current jobs, then stop. Second: leave now; RQ retries what ran."""
        self._signals += 1
        if self._signals > 1:
            log.warning("cold shutdown: running jobs will be retried by RQ")
            os._exit(1)
        log.info("warm shutdown: finishing running jobs")
        for worker in self.workers:
            worker.request_warm_stop()
        self._stop.set()
        self._wake.set()

    def run(self, burst: bool = False, logging_level: str = "INFO") -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        self._keep_scheduler()
        threads = [
            threading.Thread(target=self._work, args=(worker, burst, logging_level), name=f"rq-{i}")
            for i, worker in enumerate(self.workers)
        ]
        for thread in threads:
            thread.start()
        log.info("workers started", threads=len(threads), queue=self.queue.name, scheduler=self.scheduler is not None)
        while any(thread.is_alive() for thread in threads):
            self._wake.wait(self._beat_every)
            self._wake.clear()
            for worker in self.workers:
                worker.renew_lease()
            if not self._stop.is_set():
                self._keep_scheduler()
        if self.scheduler is not None and self.scheduler.alive:
            self.scheduler.request_stop()  # type: ignore[no-untyped-call]
            self.scheduler._thread.join(timeout=5)
        return sum(worker.successful_job_count for worker in self.workers)

    def _work(self, worker: ThreadWorker, burst: bool, logging_level: str) -> None:
        try:
            worker.work(burst=burst, logging_level=logging_level)
        finally:
            self._wake.set()

    def _keep_scheduler(self) -> None:
        """Hold the scheduler lock if nobody else does; another host's scheduler may own it."""
        if self.scheduler is None or self.scheduler.alive:
            return
        self.scheduler.acquire_locks(auto_start=True)  # type: ignore[no-untyped-call]
