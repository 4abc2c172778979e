"""Schedules again the jobs a crash left "scheduled" in no registry, where nothing would ever run them."""

from __future__ import annotations

import time

from redis import Redis
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry

# Atomic per job: a job that is scheduled properly, or that the scheduler is moving to the queue
# right now, is never touched. A job's status and its registry entry change in one transaction
# (workers/runtime/rq_internals/atomic_retry.py, RQ's scheduler), so only an orphan is "scheduled" and not scheduled.
_MEND = """
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local fields = redis.call('HMGET', KEYS[1], 'status', 'origin')
if fields[1] ~= ARGV[1] or fields[2] ~= ARGV[2] then return 0 end
if redis.call('ZSCORE', KEYS[2], ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
return 1
"""
_SCAN_COUNT = 1000
PREFIX = Job.redis_job_namespace_prefix


def mend(redis: Redis, queue_name: str) -> int:
    """How many orphans were put back in the scheduled registry, due now.

    RQ before our atomic retry (and any version of this project before 2026-11-27) wrote a retry's
    status before the rest of it; a Redis death in between left such jobs behind. One SCAN of the
    job keys, so a worker runs this when it starts, not on every maintenance pass."""
    registry_key = ScheduledJobRegistry(queue_name, connection=redis).key  # type: ignore[no-untyped-call]
    script = redis.register_script(_MEND)
    args = [JobStatus.SCHEDULED.value, queue_name]
    mended, cursor = 0, 0
    while True:
        cursor, page = redis.scan(cursor, match=f"{PREFIX}*", count=_SCAN_COUNT)
        job_ids = [job_id for job_id in map(_job_id, page) if job_id]
        # One round trip per page of keys, not per job.
        with redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                script(keys=[PREFIX + job_id, registry_key], args=[*args, job_id, time.time()], client=pipe)
            mended += sum(int(done) for done in pipe.execute())
        if cursor == 0:
            return mended


def _job_id(key: bytes | str) -> str:
    """The job id in a job's key, or "" for a job's side keys (dependents, …)."""
    job_id = (key.decode() if isinstance(key, bytes) else key)[len(PREFIX):]
    return "" if ":" in job_id else job_id
