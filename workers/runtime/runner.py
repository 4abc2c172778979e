"""Runs a process of RQ workers: threads on our queue, RQ's JSON serializer, optionally RQ's scheduler."""

from __future__ import annotations

import os
from functools import partial

from redis import Redis
from redis.exceptions import RedisError

from receiver.kernel import logs
from receiver.kernel.redis_client import sync_redis
from workers.jobs import context
from workers.reconcile import job as reconcile_job
from workers.runtime.rq_internals import orphan_mend
from workers.runtime.rq_internals.pool import ThreadPool
from workers.settings import WorkerSettings
from workers.storage import sweep as archive_sweep

log = logs.get("workers.runtime.runner")

# Workers starting within this window share one scan for orphaned jobs.
ORPHAN_MEND_EVERY_SECONDS = 300


def run(settings: WorkerSettings, with_scheduler: bool = True, burst: bool = False, threads: int | None = None) -> bool:
    """Returns whether any job succeeded (burst mode uses it; a long-running pool returns on stop).

    Nothing here talks to Redis before the pool has waited for it: a worker started during an
    outage waits for Redis instead of exiting."""
    ctx = context.WorkerContext(settings)
    context.install(ctx)
    redis = sync_redis(settings, socket_timeout=30, socket_connect_timeout=5, health_check_interval=30)
    try:
        return _run_pool(settings, redis, with_scheduler, burst, threads)
    finally:
        redis.close()
        ctx.close()


def _run_pool(settings: WorkerSettings, redis: Redis, with_scheduler: bool, burst: bool, threads: int | None) -> bool:
    pool = ThreadPool(
        redis,
        settings.queue_name,
        threads or settings.worker_threads,
        with_scheduler=with_scheduler,
        lease_seconds=settings.worker_lease_seconds,
        maintenance_seconds=settings.worker_maintenance_seconds,
    )
    log.info("worker process starting", queue=settings.queue_name, scheduler=with_scheduler)
    # RQ logs a few lines for every job; our own structured "recording processed" line says more.
    rq_level = "WARNING" if settings.log_level.upper() == "INFO" else settings.log_level
    on_connected = partial(_sweep_temp_files, settings) if burst else partial(_at_start, settings, redis)
    return pool.run(burst=burst, logging_level=rq_level, on_connected=on_connected) > 0


def _at_start(settings: WorkerSettings, redis: Redis) -> None:
    _sweep_temp_files(settings)
    _mend_orphaned_jobs(settings, redis)
    _ensure_reconcile_chain(settings)


def _sweep_temp_files(settings: WorkerSettings) -> None:
    """Temp files no job can still be writing (untouched for a whole job timeout): orphans of
    workers killed mid-write whose recordings never got another attempt. Object storage has none:
    an unfinished multipart upload is invisible, and the bucket's lifecycle rule reclaims it."""
    if settings.storage_bucket is not None:
        return
    try:
        removed = archive_sweep.sweep(settings.storage_path, older_than_seconds=settings.job_timeout_seconds)
    except OSError as exc:  # storage unreadable now: the jobs will say so with the reason
        log.warning("temp files not swept", error=type(exc).__name__)
        return
    if removed:
        log.info("orphaned temp files removed", count=removed, storage=str(settings.storage_path))


def _mend_orphaned_jobs(settings: WorkerSettings, redis: Redis) -> None:
    """Once per start, and by one of the workers starting together: the lock outlives the scan."""
    try:
        if not redis.set(f"rr:orphan-mend:{settings.queue_name}", os.getpid(), nx=True, ex=ORPHAN_MEND_EVERY_SECONDS):
            return
        mended = orphan_mend.mend(redis, settings.queue_name)
    except RedisError as exc:  # the next worker start tries again
        log.warning("orphaned jobs not checked", error=type(exc).__name__)
        return
    if mended:
        log.warning("orphaned jobs scheduled again", count=mended, queue=settings.queue_name)


def _ensure_reconcile_chain(settings: WorkerSettings) -> None:
    """The reconciler's chain of scheduled passes: idempotent, so every worker may ensure it."""
    try:
        reconcile_job.ensure_scheduled(settings)
    except RedisError as exc:  # the next worker start, or the running chain, will see to it
        log.warning("reconciler schedule not checked", error=type(exc).__name__)
