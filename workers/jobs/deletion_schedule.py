"""Scheduling deletions at Twilio after an archive, and listing what is scheduled (the dry run)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from rq import Queue
from rq.exceptions import DuplicateJobError
from rq.job import Job, Retry
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from receiver.kernel import holds, keys
from receiver.kernel.holds import Hold
from receiver.kernel.job_template import RETRY_INTERVALS
from workers.settings import WorkerSettings

AFTER_ARCHIVE = "after-archive"
# A deletion job's result and failure are kept as long as a recording job's: the console shows them.
RESULT_TTL_SECONDS = 7 * 24 * 3600
JOB_PREFIX = keys.deletion_job_id("", "").rstrip("-")
# The parents a hold may name, as the catalog keeps them on a recording.
PARENT_FIELDS = ("call_sid", "conference_sid", "room_sid")


def payload(source: str, account_sid: str, sid: str) -> dict[str, Any]:
    return {"v": 1, "source": source, "account_sid": account_sid, "sid": sid}


def schedule(settings: WorkerSettings, redis: Redis, source: str, account_sid: str, sid: str) -> str | None:
    """Schedule the recording's deletion at Twilio when the policy is on: its job id, or None.
    One job id per recording, created only if absent, so a second archive run schedules nothing."""
    if settings.delete_at_twilio != AFTER_ARCHIVE:
        return None
    job_id = keys.deletion_job_id(source, sid)
    queue = Queue(settings.queue_name, connection=redis, serializer=JSONSerializer)
    retry = Retry(max=settings.retry_max, interval=RETRY_INTERVALS[: settings.retry_max]) if settings.retry_max > 0 else None
    options: dict[str, Any] = dict(
        job_id=job_id, unique=True, job_timeout=settings.job_timeout_seconds, retry=retry,
        result_ttl=RESULT_TTL_SECONDS, failure_ttl=RESULT_TTL_SECONDS, description=f"delete {source} {sid} at Twilio",
    )
    delay = settings.delete_delay_seconds
    with contextlib.suppress(DuplicateJobError):  # scheduled already (or done and still remembered)
        if delay <= 0:
            queue.enqueue(keys.DELETE_FUNCTION, payload(source, account_sid, sid), **options)
        else:
            queue.enqueue_in(timedelta(seconds=delay), keys.DELETE_FUNCTION, payload(source, account_sid, sid), **options)
    return job_id


def hold_on(redis: Redis, sid: str, recording: dict[str, str]) -> Hold | None:
    """The hold on this recording or on the call, conference or room it belongs to."""
    return holds.holding(redis, [sid, *(recording.get(name, "") for name in PARENT_FIELDS)])


@dataclass(frozen=True)
class Pending:
    """One deletion that would happen: when (None: due now, waiting in the queue), and any hold."""

    due: datetime | None
    source: str
    sid: str
    hold: Hold | None

    def line(self) -> str:
        when = self.due.strftime("%Y-%m-%d %H:%M:%SZ") if self.due else "now (queued)"
        held = f"  HELD by {self.hold.by} on {self.hold.sid}: {self.hold.reason}" if self.hold else ""
        return f"{when:<20}  {self.source:<6}  {self.sid}{held}"


def pending(settings: WorkerSettings, redis: Redis) -> list[Pending]:
    """Every deletion job scheduled or waiting, soonest first (the dry run: nothing is changed)."""
    queue = Queue(settings.queue_name, connection=redis, serializer=JSONSerializer)
    registry = ScheduledJobRegistry(queue=queue)  # type: ignore[no-untyped-call]
    due: dict[str, datetime | None] = {}
    for job_id in registry.get_job_ids():
        if job_id.startswith(JOB_PREFIX):
            with contextlib.suppress(Exception):  # gone between the two reads
                due[job_id] = registry.get_scheduled_time(job_id).replace(tzinfo=UTC)
    for job_id in queue.get_job_ids():
        if job_id.startswith(JOB_PREFIX):
            due.setdefault(job_id, None)
    found = []
    for job in Job.fetch_many(list(due), connection=redis, serializer=JSONSerializer):
        if job is None or not job.args or not isinstance(job.args[0], dict):
            continue
        args: dict[str, Any] = job.args[0]
        source, sid = str(args.get("source")), str(args.get("sid"))
        recording = _recording(redis, source, sid)
        found.append(Pending(due[job.id], source, sid, hold_on(redis, sid, recording)))
    return sorted(found, key=lambda p: (p.due is not None, p.due or datetime.min.replace(tzinfo=UTC), p.sid))


def _recording(redis: Redis, source: str, sid: str) -> dict[str, str]:
    raw: dict[bytes, bytes] = redis.hgetall(keys.recording_key(source, sid))  # type: ignore[assignment]
    return {k.decode(): v.decode() for k, v in raw.items()}
