"""The receiver writes RQ's job hash by hand (a Lua script): held field by field to RQ's own enqueue."""

from __future__ import annotations

from typing import Any

from redis import Redis
from rq import Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer

from receiver.kernel.enqueue_script import SyncEnqueuer
from receiver.kernel.events import RecordingEvent, Source, Status
from receiver.kernel.job_template import RESULT_TTL_SECONDS, RETRY_INTERVALS, JobTemplate

QUEUE, TIMEOUT, RETRY_MAX = "recordings", 600, 3
# Differ by nature between two enqueues a moment apart.
TIMESTAMPS = {"created_at", "enqueued_at"}
# RQ writes these empty; the script leaves them out (every field costs Redis time on the hot
# path) and RQ reads an absent field as an empty one, which the to_dict comparison below proves.
LEFT_OUT_WHEN_EMPTY = {"ended_at", "started_at", "last_heartbeat", "worker_name", "group_id",
                       "success_callback_name", "failure_callback_name", "stopped_callback_name"}


def _both(redis: Redis) -> tuple[Job, Job]:
    """One event through our script, and the same job through RQ's `Queue.enqueue_call`."""
    event = RecordingEvent(Source.VOICE, "RE" + "1" * 32, Status.COMPLETED, "AC" + "0" * 32)
    ours_id = SyncEnqueuer(redis, JobTemplate(QUEUE, TIMEOUT, RETRY_MAX), 3600).submit(event).job_id
    ours = Job.fetch(ours_id, connection=redis, serializer=JSONSerializer)
    queue = Queue(QUEUE, connection=redis, serializer=JSONSerializer)
    theirs = queue.enqueue_call(
        ours.func_name, args=ours.args, job_id="rq-own", timeout=TIMEOUT, result_ttl=RESULT_TTL_SECONDS,
        description=ours.description, retry=Retry(max=RETRY_MAX, interval=RETRY_INTERVALS[:RETRY_MAX]),
    )
    return ours, theirs


def _hash(redis: Redis, job: Job) -> dict[str, bytes]:
    return {key.decode(): value for key, value in redis.hgetall(job.key).items()}


def test_every_field_rq_writes_is_ours_too_or_an_empty_one_we_leave_out(redis: Redis) -> None:
    ours, theirs = _both(redis)
    mine, rqs = _hash(redis, ours), _hash(redis, theirs)
    assert set(mine) - set(rqs) == set(), "the script writes fields RQ does not"
    left_out = set(set(rqs) - set(mine))
    assert left_out == LEFT_OUT_WHEN_EMPTY and all(rqs[field] == b"" for field in left_out)
    differing = {field for field in mine if mine[field] != rqs[field]}
    # `data`: RQ compresses it, we do not (RQ reads both); compared decoded below.
    assert differing <= TIMESTAMPS | {"data"}, {field: (mine[field], rqs[field]) for field in differing - TIMESTAMPS}


def test_rq_reads_both_jobs_as_the_same_job(redis: Redis) -> None:
    ours, theirs = _both(redis)

    def read(job: Job) -> dict[str, Any]:
        fields = Job.fetch(job.id, connection=redis, serializer=JSONSerializer).to_dict()
        return {key: value for key, value in fields.items() if key not in TIMESTAMPS | {"data"}}

    assert read(ours) == read(theirs)
    assert (ours.func_name, ours.args, ours.kwargs) == (theirs.func_name, theirs.args, theirs.kwargs)
    assert (ours.retries_left, ours.retry_intervals) == (theirs.retries_left, theirs.retry_intervals)


def test_both_land_in_the_same_queue_the_same_way(redis: Redis) -> None:
    ours, theirs = _both(redis)
    assert redis.lrange(f"rq:queue:{QUEUE}", 0, -1) == [ours.id.encode(), theirs.id.encode()]
    assert redis.smembers("rq:queues") == {f"rq:queue:{QUEUE}".encode()}
    assert redis.ttl(ours.key) == redis.ttl(theirs.key) == -1
