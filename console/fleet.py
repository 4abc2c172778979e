"""Queues and workers as RQ sees them: depths, oldest waiting job, live workers."""

from __future__ import annotations

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

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


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


def workers(redis: Redis) -> list[WorkerState]:
    found = []
    for worker in Worker.all(connection=redis, serializer=JSONSerializer):
        found.append(WorkerState(
            name=worker.name, hostname=text(worker.hostname), pid=worker.pid, state=_state(worker),
            queues=[q.name for q in worker.queues], current_job=text(worker.get_current_job_id()),
            last_heartbeat=epoch(worker.last_heartbeat), born=epoch(worker.birth_date),
            successful=worker.successful_job_count, failed=worker.failed_job_count,
            working_seconds=float(worker.total_working_time or 0),
        ))
    return sorted(found, key=lambda w: (w.hostname, w.name))


def _state(worker: BaseWorker) -> str:
    state = worker.get_state()
    return str(getattr(state, "value", state))


def processes(found: list[WorkerState]) -> int:
    """Worker processes: one process may run several RQ workers (one per thread)."""
    return len({(w.hostname, w.pid) for w in found})
