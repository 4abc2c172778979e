"""Failed jobs grouped by cause, read in two round trips however many there are."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from rq.job import Job
from rq.results import Result
from rq.serializers import JSONSerializer

from console import causes, jobrefs
from console.replies import rq_epoch, text

# The newest failures this many are grouped; more than that and the page says so. Reading them is
# two pipelined round trips, so even this many answers in a fraction of a second.
MAX_SCAN = 10_000


@dataclass
class FailedJob:
    job_id: str
    source: str
    sid: str
    status: str
    line: str
    cause: str
    failed_at: float | None
    description: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Group:
    cause_id: str
    cause: str
    example: str
    jobs: list[FailedJob] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.jobs)

    @property
    def newest(self) -> float | None:
        return max((j.failed_at for j in self.jobs if j.failed_at), default=None)

    @property
    def oldest(self) -> float | None:
        return min((j.failed_at for j in self.jobs if j.failed_at), default=None)

    @property
    def sources(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for job in self.jobs:
            counts[job.source or "other"] = counts.get(job.source or "other", 0) + 1
        return counts

    def to_json(self, with_jobs: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "cause_id": self.cause_id, "cause": self.cause, "example": self.example, "count": self.count,
            "newest": self.newest, "oldest": self.oldest, "sources": self.sources,
        }
        if with_jobs:
            data["jobs"] = [j.to_json() for j in self.jobs]
        return data


@dataclass
class Failures:
    groups: list[Group]
    total: int
    scanned: int

    @property
    def truncated(self) -> bool:
        return self.total > self.scanned

    def group(self, cause_id: str) -> Group | None:
        return next((g for g in self.groups if g.cause_id == cause_id), None)

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "scanned": self.scanned, "truncated": self.truncated,
                "groups": [g.to_json() for g in self.groups]}


def scan(redis: Redis, queue_name: str, limit: int = MAX_SCAN) -> Failures:
    """The newest `limit` failed jobs of the queue, grouped by normalised cause, biggest group first."""
    key = jobrefs.failed_registry_key(queue_name)
    pipe = redis.pipeline(transaction=False)
    pipe.zcard(key)
    # Scores are expiry times (failure time + the same TTL), so highest score is newest failure.
    pipe.zrevrange(key, 0, limit - 1)
    total, raw_ids = pipe.execute()
    ids = [text(i) for i in raw_ids]
    pipe = redis.pipeline(transaction=False)
    for job_id in ids:
        pipe.xrevrange(_results_key(job_id), "+", "-", count=1)
        pipe.hmget(Job.key_for(job_id), ["exc_info", "description", "ended_at"])
    replies = pipe.execute()
    groups: dict[str, Group] = {}
    for index, job_id in enumerate(ids):
        failed = _failed_job(redis, job_id, replies[2 * index], replies[2 * index + 1])
        cid = causes.cause_id(failed.cause)
        group = groups.setdefault(cid, Group(cid, failed.cause, failed.line))
        group.jobs.append(failed)
    ordered = sorted(groups.values(), key=lambda g: (-g.count, -(g.newest or 0)))
    return Failures(ordered, int(total), len(ids))


def one(redis: Redis, queue_name: str, job_id: str) -> FailedJob | None:
    """One failed job, or None when it is not in the failed list."""
    if redis.zscore(jobrefs.failed_registry_key(queue_name), job_id) is None:
        return None
    pipe = redis.pipeline(transaction=False)
    pipe.xrevrange(_results_key(job_id), "+", "-", count=1)
    pipe.hmget(Job.key_for(job_id), ["exc_info", "description", "ended_at"])
    stream, job_fields = pipe.execute()
    return _failed_job(redis, job_id, stream, job_fields)


def _failed_job(redis: Redis, job_id: str, stream: Any, job_fields: Any) -> FailedJob:
    exc_info, description, ended_at = job_fields
    exc_string = ""
    failed_at = rq_epoch(ended_at)
    if stream:
        result_id, payload = stream[0]
        result = Result.restore(job_id, text(result_id), payload, connection=redis, serializer=JSONSerializer)
        exc_string = result.exc_string or ""
        failed_at = result.created_at.timestamp()
    if not exc_string and exc_info:
        exc_string = _decompress(exc_info)
    line = causes.last_line(exc_string)
    ref = jobrefs.parse(job_id)
    return FailedJob(
        job_id=job_id, source=ref.source if ref else "", sid=ref.sid if ref else "", status=ref.status if ref else "",
        line=causes.headline(line), cause=causes.normalise(line), failed_at=failed_at,
        description=text(description)[:200],
    )


def _decompress(value: Any) -> str:
    raw = value if isinstance(value, bytes) else text(value).encode()
    try:
        return zlib.decompress(raw).decode("utf-8", "replace")
    except zlib.error:
        return raw.decode("utf-8", "replace")


def _results_key(job_id: str) -> str:
    key: str = Result.get_key(job_id)  # type: ignore[no-untyped-call]
    return key
