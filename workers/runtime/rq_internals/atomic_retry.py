"""RQ's job retry, with the scheduled status written in the caller's transaction instead of before it."""

from __future__ import annotations

from datetime import timedelta

from redis.client import Pipeline
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.utils import now

# The RQ source this routine was copied from and changed; tests/faults/test_atomic_retry.py fails when
# RQ's own retry changes, so that a fix there is read and carried over here.
COPIED_FROM = "rq.job.Job.retry"  # tests/contract/test_rq_drift.py holds the digest below to it
COPIED_SOURCE_SHA256 = "a47ae2890cdaacd825d1db6eea19a225fbe321e93c409a2794beaa2c631a7a08"  # rq 3.0.0


class AtomicRetryJob(Job):
    """RQ 3.0's `Job.retry` writes `status=scheduled` at once, outside the pipeline that carries the
    rest of the retry: the spent retry, the ZADD to the scheduled registry and the removal from the
    started registry. When Redis dies between the two, the job is left "scheduled" in no registry,
    and the next clean-up skips it (its status is no longer "started") and drops it from `wip`: the
    job is lost. Here the status rides in the same transaction, so either all of the retry happens
    or none of it does and the lapsed lease retries the job later."""

    def retry(self, queue: Queue, pipeline: Pipeline) -> None:  # type: ignore[override]
        retry_interval = self.get_retry_interval()
        if not retry_interval:
            # Enqueued at once: RQ's `_enqueue_job` already writes the status through the pipeline.
            super().retry(queue, pipeline)
            return
        assert self.retries_left
        self.retries_left = self.retries_left - 1
        scheduled_datetime = now() + timedelta(seconds=retry_interval)
        # `schedule_job` persists the job with status SCHEDULED through the pipeline; only the
        # in-memory status is set here.
        self._status = JobStatus.SCHEDULED
        queue.schedule_job(self, scheduled_datetime, pipeline=pipeline)
        self.log.info(
            "Job %s: scheduled for retry at %s, %s remaining", self.id, scheduled_datetime, self.retries_left
        )
