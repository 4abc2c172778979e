"""A retry either happens whole or not at all, even when Redis goes away in the middle of it; orphans
of older versions are scheduled again."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry as RedisRetry
from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry, StartedJobRegistry, clean_registries
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker

from tests.support.cutting_proxy import CuttingProxy
from tests.support.servers import RedisProcess
from workers.commands.settings import Settings
from workers.runtime import runner
from workers.runtime.rq_internals import orphan_mend
from workers.runtime.rq_internals.atomic_retry import AtomicRetryJob
from workers.runtime.rq_internals.job_allowlist import AllowlistedJob
from workers.runtime.rq_internals.pool import ThreadPool

RETRIES = 3


@pytest.fixture
def direct(own_redis: RedisProcess) -> Redis:
    return own_redis.client()


@pytest.fixture
def cut_at_exec(own_redis: RedisProcess) -> Iterator[Redis]:
    """A client whose every MULTI/EXEC transaction is lost on the way, like Redis dying just then."""
    password = own_redis.client().connection_pool.connection_kwargs.get("password")
    with CuttingProxy(own_redis.port, cut_on=b"EXEC") as proxy:
        yield Redis(port=proxy.port, password=password, retry=RedisRetry(NoBackoff(), 0))


def _abandoned_job(redis: Redis, job_class: type[Job]) -> Job:
    """A job whose worker died mid-run: status started, its lease in `wip` long lapsed."""
    queue = Queue("callbacks", connection=redis, serializer=JSONSerializer, job_class=job_class)
    job = queue.enqueue_call("workers.jobs.process_event", args=({},), retry=Retry(max=RETRIES, interval=60))
    queue.remove(job)
    job.set_status(JobStatus.STARTED)
    redis.zadd(StartedJobRegistry(queue=queue).key, {f"{job.id}:dead-execution": 1})
    return job


def _clean_up(redis: Redis, job_class: type[Job]) -> None:
    """The maintenance our workers run (workers/runtime/rq_internals/thread_worker.py), on a queue of `job_class`."""
    clean_registries(Queue("callbacks", connection=redis, serializer=JSONSerializer, job_class=job_class))


def test_our_workers_clean_up_with_the_atomic_retry(direct: Redis) -> None:
    """RQ's registries take their job class from the queue they clean: that queue must carry ours."""
    worker = ThreadPool(direct, "callbacks", threads=1, with_scheduler=False).new_worker("t")
    assert [issubclass(queue.job_class, AtomicRetryJob) for queue in worker.queues] == [True]
    assert issubclass(worker.job_class, AtomicRetryJob)


def _where(redis: Redis, job: Job) -> tuple[str, bool, bool, int]:
    fresh = Job.fetch(job.id, connection=redis, serializer=JSONSerializer)
    queue = Queue("callbacks", connection=redis, serializer=JSONSerializer)
    in_wip = any(job_id == job.id for job_id, _ in StartedJobRegistry(queue=queue).get_job_and_execution_ids(cleanup=False))
    scheduled = job.id in ScheduledJobRegistry(queue=queue).get_job_ids(cleanup=False)  # type: ignore[no-untyped-call]
    return fresh.get_status(), in_wip, scheduled, fresh.retries_left or 0


def test_a_cleanup_cut_at_exec_leaves_the_abandoned_job_for_the_next_cleanup(direct: Redis, cut_at_exec: Redis) -> None:
    job = _abandoned_job(direct, AllowlistedJob)
    with pytest.raises(RedisConnectionError):
        _clean_up(cut_at_exec, AllowlistedJob)
    assert _where(direct, job) == (JobStatus.STARTED, True, False, RETRIES)

    _clean_up(direct, AllowlistedJob)
    assert _where(direct, job) == (JobStatus.SCHEDULED, False, True, RETRIES - 1)


def _orphan(direct: Redis, cut_at_exec: Redis) -> Job:
    """What RQ's own retry leaves when Redis dies mid-retry: the cut clean-up wrote the status
    alone, and the next one skips a job that no longer says "started"."""
    job = _abandoned_job(direct, Job)
    with pytest.raises(RedisConnectionError):
        _clean_up(cut_at_exec, Job)
    _clean_up(direct, Job)
    return job


def test_rq_s_own_retry_orphans_that_job(direct: Redis, cut_at_exec: Redis) -> None:
    """Why AtomicRetryJob exists: with RQ's Job the same cut leaves a job no registry holds."""
    assert _where(direct, _orphan(direct, cut_at_exec)) == (JobStatus.SCHEDULED, False, False, RETRIES)


def test_a_failed_attempt_cut_at_exec_is_retried_once_its_lease_lapses(direct: Redis, cut_at_exec: Redis) -> None:
    job = _abandoned_job(direct, AllowlistedJob)
    queue = Queue("callbacks", connection=cut_at_exec, serializer=JSONSerializer, job_class=AllowlistedJob)
    worker = SimpleWorker([queue], connection=cut_at_exec, serializer=JSONSerializer, job_class=AllowlistedJob)
    running = AllowlistedJob.fetch(job.id, connection=cut_at_exec, serializer=JSONSerializer)
    worker.handle_job_failure(running, queue, exc_string="TransientError: media answered 503")
    assert _where(direct, job) == (JobStatus.STARTED, True, False, RETRIES)

    _clean_up(direct, AllowlistedJob)
    assert _where(direct, job) == (JobStatus.SCHEDULED, False, True, RETRIES - 1)


def test_orphans_are_scheduled_again_and_nothing_else_is_touched(direct: Redis, cut_at_exec: Redis) -> None:
    orphan, scheduled = _orphan(direct, cut_at_exec), _abandoned_job(direct, AllowlistedJob)
    _clean_up(direct, AllowlistedJob)
    other_queue = _abandoned_job(direct, Job)
    direct.hset(other_queue.key, mapping={"origin": "someone-elses", "status": JobStatus.SCHEDULED.value})
    direct.sadd(f"{orphan.key}:dependents", "x")  # a job's side key, not a job

    assert orphan_mend.mend(direct, "callbacks") == 1
    assert _where(direct, orphan) == (JobStatus.SCHEDULED, False, True, RETRIES)
    assert _where(direct, scheduled) == (JobStatus.SCHEDULED, False, True, RETRIES - 1)
    assert orphan_mend.mend(direct, "callbacks") == 0


def test_a_starting_worker_mends_orphans_once_for_all_workers_starting_with_it(
    direct: Redis, cut_at_exec: Redis, own_redis: RedisProcess, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(redis_url=own_redis.url, queue_name="callbacks")
    orphan = _orphan(direct, cut_at_exec)
    runner._mend_orphaned_jobs(settings, direct)
    assert _where(direct, orphan)[2] is True

    second = _orphan(direct, cut_at_exec)
    runner._mend_orphaned_jobs(settings, direct)  # within the window: another worker did the scan
    assert _where(direct, second)[2] is False
