"""Queues and workers as RQ sees them: depths, oldest waiting job, live workers by process."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from redis import Redis
from rq import Queue, Worker
from rq.job import Job
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.serializers import JSONSerializer
from rq.worker import BaseWorker

from console import jobrefs
from console.replies import epoch, integer, rq_epoch, text


@dataclass
class QueueState:
    name: str
    waiting: int
    oldest_waiting_age: float | None
    started: int
    scheduled: int
    next_retry_in: float | None
    failed: int
    deferred: int
    finished: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RunningJob:
    """A worker's current job: its id, the recording it is for (ours name it), since when."""

    id: str
    source: str | None
    recording_sid: str | None
    started_at: float | None
    running_seconds: float | None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class WorkerState:
    name: str
    hostname: str
    pid: int | None
    state: str
    queues: list[str]
    current_job: str
    last_heartbeat: float | None
    born: float | None
    successful: int
    failed: int
    working_seconds: float
    job: RunningJob | None = None

    @property
    def slot(self) -> str:
        """What follows `host.pid.` in our names (the thread's slot); the whole name otherwise."""
        prefix = f"{self.hostname}.{self.pid}."
        return self.name.removeprefix(prefix) if self.name.startswith(prefix) else self.name

    def to_json(self) -> dict[str, Any]:
        found = dict(self.__dict__)
        found["job"] = self.job.to_json() if self.job else None
        return found


@dataclass
class Process:
    """One worker process: the RQ workers (one per thread) that share its host and PID."""

    hostname: str
    pid: int | None
    workers: list[WorkerState]

    @property
    def threads(self) -> int:
        return len(self.workers)

    @property
    def busy(self) -> int:
        return sum(1 for w in self.workers if w.state == "busy")

    @property
    def born(self) -> float | None:
        return min((w.born for w in self.workers if w.born is not None), default=None)

    def to_json(self) -> dict[str, Any]:
        return {"hostname": self.hostname, "pid": self.pid, "threads": self.threads, "busy": self.busy,
                "born": self.born, "workers": [w.name for w in self.workers]}


def queue_state(redis: Redis, name: str, now: float) -> QueueState:
    """One round trip for the counts, one more for the oldest waiting job's age."""
    queue = Queue(name, connection=redis, serializer=JSONSerializer)
    registries = [
        StartedJobRegistry(name, connection=redis), ScheduledJobRegistry(name, connection=redis),  # type: ignore[no-untyped-call]
        FailedJobRegistry(name, connection=redis), DeferredJobRegistry(name, connection=redis),
        FinishedJobRegistry(name, connection=redis),
    ]
    pipe = redis.pipeline(transaction=False)
    pipe.llen(queue.key)
    pipe.lindex(queue.key, 0)
    for registry in registries:
        pipe.zcard(registry.key)
    pipe.zrange(registries[1].key, 0, 0, withscores=True)
    waiting, head, started, scheduled, failed, deferred, finished, next_scheduled = pipe.execute()
    oldest = None
    if head is not None:
        enqueued = rq_epoch(redis.hget(Job.key_for(text(head)), "enqueued_at"))
        oldest = max(0.0, now - enqueued) if enqueued is not None else None
    next_retry = float(next_scheduled[0][1]) - now if next_scheduled else None
    return QueueState(
        name=name, waiting=integer(waiting), oldest_waiting_age=oldest, started=integer(started),
        scheduled=integer(scheduled), next_retry_in=next_retry, failed=integer(failed),
        deferred=integer(deferred), finished=integer(finished),
    )


def queue_names(redis: Redis, ours: str) -> list[str]:
    """Our queue first, then any other RQ queue in this Redis (the reconciler's, say)."""
    others = sorted(q.name for q in Queue.all(connection=redis, serializer=JSONSerializer) if q.name != ours)
    return [ours, *others]


def workers(redis: Redis, now: float | None = None) -> list[WorkerState]:
    """Every live RQ worker, with its current job's details (one more round trip for them)."""
    found = []
    for worker in Worker.all(connection=redis, serializer=JSONSerializer):
        found.append(WorkerState(
            name=worker.name, hostname=text(worker.hostname), pid=worker.pid, state=_state(worker),
            queues=[q.name for q in worker.queues], current_job=text(worker.get_current_job_id()),
            last_heartbeat=epoch(worker.last_heartbeat), born=epoch(worker.birth_date),
            successful=worker.successful_job_count, failed=worker.failed_job_count,
            working_seconds=float(worker.total_working_time or 0),
        ))
    _add_running_jobs(redis, [w for w in found if w.current_job], now if now is not None else time.time())
    return sorted(found, key=lambda w: (w.hostname, w.pid or 0, _slot_order(w.slot), w.name))


def _add_running_jobs(redis: Redis, busy: list[WorkerState], now: float) -> None:
    if not busy:
        return
    pipe = redis.pipeline(transaction=False)
    for worker in busy:
        pipe.hget(Job.key_for(worker.current_job), "started_at")
    for worker, started in zip(busy, pipe.execute(), strict=False):
        ref = jobrefs.parse(worker.current_job)
        started_at = rq_epoch(started)
        worker.job = RunningJob(
            id=worker.current_job, source=ref.source if ref else None, recording_sid=ref.sid if ref else None,
            started_at=started_at, running_seconds=max(0.0, now - started_at) if started_at is not None else None,
        )


def _slot_order(slot: str) -> tuple[int, str]:
    """Slots 0, 1, …, 10 in number order; a replacement's `3-1` after `3`."""
    head = slot.split("-", 1)[0]
    return (int(head), slot) if head.isdigit() else (1 << 30, slot)


def _state(worker: BaseWorker) -> str:
    state = worker.get_state()
    return str(getattr(state, "value", state))


def processes(found: list[WorkerState]) -> int:
    """Worker processes: one process may run several RQ workers (one per thread)."""
    return len({(w.hostname, w.pid) for w in found})


def by_process(found: list[WorkerState]) -> list[Process]:
    """Workers grouped by (host, PID), hosts and PIDs in order, each process's threads by slot."""
    groups: dict[tuple[str, int | None], list[WorkerState]] = {}
    for worker in found:
        groups.setdefault((worker.hostname, worker.pid), []).append(worker)
    return [Process(host, pid, members) for (host, pid), members in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or 0))]


def hosts(found: list[Process]) -> list[tuple[str, list[Process]]]:
    """Processes under their host, for the page's headings."""
    grouped: dict[str, list[Process]] = {}
    for process in found:
        grouped.setdefault(process.hostname, []).append(process)
    return list(grouped.items())
