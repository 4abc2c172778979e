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


class FailureIndex:
    """Reads the failed list; remembers each job's parsed cause while the job stays failed.

    A failed job does not change until it is replayed or fails again (which moves its score), so
    after the first read a page costs one ZRANGE however many jobs have failed. The cache is this
    process's only; Redis stays the truth, so several console processes agree.
    """

    def __init__(self, redis: Redis, queue_name: str) -> None:
        self.redis = redis
        self.key = jobrefs.failed_registry_key(queue_name)
        self._known: dict[str, tuple[float, FailedJob]] = {}

    def scan(self, limit: int = MAX_SCAN) -> Failures:
        """The newest `limit` failed jobs, grouped by normalised cause, biggest group first."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(self.key)
        # Scores are expiry times (failure time + the same TTL), so highest score is newest failure.
        pipe.zrevrange(self.key, 0, limit - 1, withscores=True)
        total, entries = pipe.execute()
        listed = [(text(member), float(score)) for member, score in entries]
        known = dict(self._known)  # a copy: scans run concurrently in the thread pool
        known.update(self._load([(job_id, score) for job_id, score in listed if known.get(job_id, (None,))[0] != score]))
        # Forget what left the list (replayed, discarded, expired): the cache never outgrows it.
        known = {job_id: known[job_id] for job_id, _ in listed}
        self._known = known
        groups: dict[str, Group] = {}
        for job_id, _ in listed:
            failed = known[job_id][1]
            cid = causes.cause_id(failed.cause)
            groups.setdefault(cid, Group(cid, failed.cause, failed.line)).jobs.append(failed)
        ordered = sorted(groups.values(), key=lambda g: (-g.count, -(g.newest or 0)))
        return Failures(ordered, int(total), len(listed))

    def one(self, job_id: str) -> FailedJob | None:
        """One failed job, or None when it is not in the failed list."""
        score = self.redis.zscore(self.key, job_id)
        if score is None:
            return None
        return self._load([(job_id, float(score))])[job_id][1]

    def _load(self, entries: list[tuple[str, float]]) -> dict[str, tuple[float, FailedJob]]:
        """Each job's latest result (its traceback) and fields, two commands a job, one round trip."""
        if not entries:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for job_id, _ in entries:
            pipe.xrevrange(_results_key(job_id), "+", "-", count=1)
            pipe.hmget(Job.key_for(job_id), ["exc_info", "description", "ended_at"])
        replies = pipe.execute()
        return {
            job_id: (score, _failed_job(self.redis, job_id, replies[2 * index], replies[2 * index + 1]))
            for index, (job_id, score) in enumerate(entries)
        }


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
