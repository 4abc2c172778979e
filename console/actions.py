"""Replay and discard failed jobs through RQ itself, each recorded with who asked for it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from redis import Redis
from rq.exceptions import DeserializationError, InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from console import audit, failures, jobrefs
from receiver.kernel.errors import RecordingReceiverError


class NotFailed(RecordingReceiverError, LookupError):
    """The job is not (or no longer) in the failed list: already replayed, discarded or expired."""


@dataclass(frozen=True)
class Done:
    job_id: str
    source: str
    sid: str


class Actions:
    def __init__(self, redis: Redis, queue_name: str, retry_max: int, failed: failures.FailureIndex) -> None:
        self.redis = redis
        self.failed = failed
        self.retry_max = retry_max
        self.registry = FailedJobRegistry(queue_name, connection=redis, serializer=JSONSerializer)

    def replay(self, job_id: str, user: str) -> Done:
        """Give the job its full retries back and put it on its queue again, as RQ's requeue does."""
        job = self._failed_job(job_id)
        job.retries_left = self.retry_max
        try:
            # Takes it off the failed list, then saves it (with retries_left) and enqueues it.
            self.registry.requeue(job)
        except InvalidJobOperation:
            raise NotFailed(job_id) from None  # Someone else replayed or discarded it just now.
        done = self._done(job)
        audit.record(
            self.redis, audit.Action(audit.now(), user, "replay", job_id, done.source, done.sid),
            {"kind": "replay", "by": user, "job_id": job_id, "status": _status_of(job)},
        )
        return done

    def discard(self, job_id: str, user: str) -> Done:
        """Delete the failed job for good: the dedupe ledger still knows this (recording, status), so a
        repeated callback or a reconciler find of it counts as a duplicate and queues nothing."""
        job = self._failed_job(job_id)
        done = self._done(job)
        job.delete()
        audit.record(
            self.redis, audit.Action(audit.now(), user, "discard", job_id, done.source, done.sid),
            {"kind": "discard", "by": user, "job_id": job_id, "status": _status_of(job)},
        )
        return done

    def replay_cause(self, cause_id: str, user: str) -> list[Done]:
        return self._each(cause_id, user, self.replay)

    def discard_cause(self, cause_id: str, user: str) -> list[Done]:
        return self._each(cause_id, user, self.discard)

    def _each(self, cause_id: str, user: str, act: Callable[[str, str], Done]) -> list[Done]:
        group = self.failed.scan().group(cause_id)
        done = []
        for failed in group.jobs if group else []:
            try:
                done.append(act(failed.job_id, user))
            except NotFailed:
                continue
        return done

    def _failed_job(self, job_id: str) -> Job:
        if job_id not in self.registry:
            raise NotFailed(job_id)
        try:
            return Job.fetch(job_id, connection=self.redis, serializer=JSONSerializer)
        except NoSuchJobError:
            # The job's data expired while its id stayed in the registry: nothing left to replay.
            self.registry.remove(job_id)
            raise NotFailed(job_id) from None

    def _done(self, job: Job) -> Done:
        ref = jobrefs.parse(job.id)
        if ref is not None:
            return Done(job.id, ref.source, ref.sid)
        payload = _payload(job)
        return Done(job.id, str(payload.get("source", "")), str(payload.get("sid", "")))


def _payload(job: Job) -> dict[str, object]:
    try:
        args = job.args
    except (DeserializationError, ValueError, TypeError):  # An unreadable payload must not block a discard.
        return {}
    return args[0] if args and isinstance(args[0], dict) else {}


def _status_of(job: Job) -> str:
    ref = jobrefs.parse(job.id)
    return ref.status if ref else str(_payload(job).get("status", ""))
