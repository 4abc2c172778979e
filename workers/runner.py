"""Runs RQ workers on our queue with RQ's JSON serializer and, where asked, RQ's scheduler."""

from __future__ import annotations

from redis import Redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from receiver import logs
from receiver.settings import Settings
from workers import context


class RecordingWorker(SimpleWorker):
    """Runs jobs in its own process: no fork per job, so the Twilio clients and pools are reused.

    A crash of the process is still survivable: RQ finds the abandoned job in the started
    registry and retries it, and every effect of a job is idempotent.
    """


def run(settings: Settings, with_scheduler: bool = True, burst: bool = False, name: str | None = None) -> bool:
    context.install(context.WorkerContext(settings))
    redis = Redis.from_url(settings.redis_url or "")
    queue = Queue(settings.queue_name, connection=redis, serializer=JSONSerializer)
    worker = RecordingWorker([queue], connection=redis, serializer=JSONSerializer, name=name)
    logs.get("workers.runner").info("worker starting", queue=settings.queue_name, scheduler=with_scheduler)
    return bool(worker.work(with_scheduler=with_scheduler, burst=burst, logging_level=settings.log_level))
