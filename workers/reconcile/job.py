"""The scheduled reconciler: an RQ job that runs a pass and schedules the next one, a chain kept single.

Each pass is due at a boundary of RECONCILE_INTERVAL_SECONDS (epoch-aligned) and its job id names
that boundary, so every worker that starts, and every pass that re-schedules, asks for the same
job: RQ's `unique=True` lets exactly one of them create it. The next pass is scheduled before this
one runs, so a pass that crashes or is killed cannot break the chain.
"""

from __future__ import annotations

import contextlib
import math
import time
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from rq import Queue
from rq.exceptions import DuplicateJobError
from rq.serializers import JSONSerializer

from receiver.kernel import keys, logs
from receiver.kernel.redis_client import sync_redis
from workers.jobs import context
from workers.reconcile import reconciler
from workers.settings import WorkerSettings

log = logs.get("workers.reconcile.job")

# Kept a day: long enough to look at in `rq info` or the console, short enough not to pile up.
RESULT_TTL_SECONDS = 24 * 3600


def next_slot(now: float, interval: int) -> int:
    """The first interval boundary strictly after `now`, in epoch seconds."""
    return (math.floor(now / interval) + 1) * interval


def schedule_next(settings: WorkerSettings, redis: Redis, now: float | None = None) -> str | None:
    """Schedule the pass due at the next boundary unless it is scheduled already; its job id, or
    None when the schedule is off."""
    interval = settings.reconcile_interval_seconds
    if interval <= 0 or not settings.reconcile_sources.strip():
        return None
    slot = next_slot(time.time() if now is None else now, interval)
    job_id = keys.reconcile_job_id(slot)
    queue = Queue(settings.queue_name, connection=redis, serializer=JSONSerializer)
    # another worker, or the previous pass, scheduled this slot already
    with contextlib.suppress(DuplicateJobError):
        queue.enqueue_at(
            datetime.fromtimestamp(slot, UTC), keys.RECONCILE_FUNCTION, {"v": 1, "slot": slot},
            job_id=job_id, unique=True, job_timeout=settings.job_timeout_seconds,
            result_ttl=RESULT_TTL_SECONDS, failure_ttl=RESULT_TTL_SECONDS, description=f"reconcile pass due {slot}",
        )
    return job_id


def ensure_scheduled(settings: WorkerSettings) -> str | None:
    """Call once when a worker process starts: (re)starts the chain if it was lost; cheap and safe
    from any number of workers at once."""
    redis = sync_redis(settings, socket_timeout=10, socket_connect_timeout=5)
    try:
        return schedule_next(settings, redis)
    finally:
        redis.close()


def reconcile(payload: dict[str, Any]) -> dict[str, Any]:
    """The job (`workers.reconcile.reconcile`): next pass first, then this one."""
    ctx = context.current()
    next_id = schedule_next(ctx.settings, ctx.redis)
    report = reconciler.run_pass(ctx, sources=payload.get("sources") or ())
    log.info("reconcile pass done", ok=report.ok, seen=report.total("seen"), queued=report.total("queued"), next=next_id)
    summary: dict[str, Any] = dict(report.summary())
    summary.update(next=next_id, rows=[row.as_dict() for row in report.rows])
    return summary
