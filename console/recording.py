"""One recording's whole story: its catalog fields, timeline and RQ jobs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from redis import Redis
from rq.job import Job
from rq.serializers import JSONSerializer

from console import causes, jobrefs
from console.replies import epoch, integer, mapping, optional_number, text
from receiver.kernel import holds, keys
from receiver.kernel.events import Source, Status
from receiver.kernel.holds import Hold
from receiver.kernel.sids import is_any_sid

# Catalog fields that are bookkeeping, not information for an operator.
HIDDEN_FIELDS = frozenset({"rank"})
# The parents a hold may name, as the catalog keeps them on a recording.
PARENT_FIELDS = ("call_sid", "conference_sid", "room_sid")
_KNOWN_ENTRY_KEYS = frozenset({"at", "kind", "status", "verdict", "outcome", "seconds", "error", "attempt", "job_id", "by"})


@dataclass
class TimelineEntry:
    at: float | None
    kind: str
    status: str = ""
    verdict: str = ""
    outcome: str = ""
    seconds: float | None = None
    error: str = ""
    attempt: int | None = None
    job_id: str = ""
    by: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def tone(self) -> str:
        """How the page colours the entry: bad for failures, good for success, plain otherwise."""
        if self.error or self.outcome.startswith("failed") or self.outcome == "not_found":
            return "bad"
        if self.outcome == "refused":
            return "bad"
        if self.outcome in ("done", "deleted") or self.verdict == "queued":
            return "good"
        return "plain"

    @classmethod
    def parse(cls, raw: Any) -> TimelineEntry:
        try:
            data = json.loads(text(raw))
        except ValueError:
            return cls(at=None, kind="unreadable", extra={"raw": text(raw)[:200]})
        if not isinstance(data, dict):
            return cls(at=None, kind="unreadable", extra={"raw": text(raw)[:200]})
        attempt = data.get("attempt")
        return cls(
            at=optional_number(data.get("at")), kind=str(data.get("kind", "")), status=str(data.get("status") or ""),
            verdict=str(data.get("verdict") or ""), outcome=str(data.get("outcome") or ""),
            seconds=optional_number(data.get("seconds")), error=str(data.get("error") or ""),
            attempt=int(attempt) if isinstance(attempt, (int, float)) else None,
            job_id=str(data.get("job_id") or ""), by=str(data.get("by") or ""),
            extra={k: str(v)[:200] for k, v in data.items() if k not in _KNOWN_ENTRY_KEYS and v not in (None, "")},
        )


@dataclass
class JobView:
    id: str
    status: str
    retries_left: int | None
    enqueued_at: float | None
    started_at: float | None
    ended_at: float | None
    failed: bool
    error: str
    hint: str = ""


@dataclass
class Detail:
    source: str
    sid: str
    first_seen: float | None
    fields: dict[str, str]
    timeline: list[TimelineEntry]
    jobs: list[JobView]
    # A legal hold on the recording or its call, conference or room: never deleted at Twilio while held.
    hold: Hold | None = None

    @property
    def status(self) -> str:
        return self.fields.get("status", "")

    @property
    def deleted_at_twilio(self) -> float | None:
        return optional_number(self.fields.get("deleted_at_twilio"))

    @property
    def archived_after(self) -> float | None:
        """Seconds from the first callback to the media being archived."""
        archived = optional_number(self.fields.get("archived_at"))
        if archived is None or self.first_seen is None:
            return None
        return max(0.0, archived - self.first_seen)

    @property
    def hold_parents(self) -> list[tuple[str, str]]:
        """(call|conference|room, SID) for each parent this recording names: each can be held whole."""
        found = [(name.removesuffix("_sid"), self.fields.get(name, "")) for name in PARENT_FIELDS]
        return [(label, parent) for label, parent in found if parent and not holds.problem(parent)]

    @property
    def failed_jobs(self) -> list[JobView]:
        return [j for j in self.jobs if j.failed]

    @property
    def shown_fields(self) -> dict[str, str]:
        return {k: v for k, v in sorted(self.fields.items()) if k not in HIDDEN_FIELDS}

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source, "sid": self.sid, "first_seen": self.first_seen, "fields": self.shown_fields,
            "archived_after_seconds": self.archived_after, "timeline": [asdict(e) for e in self.timeline],
            "jobs": [asdict(j) for j in self.jobs], "deleted_at_twilio": self.deleted_at_twilio,
            "hold": asdict(self.hold) if self.hold else None,
        }


def valid(source: str, sid: str) -> bool:
    return source in {s.value for s in Source} and is_any_sid(sid)


def load(redis: Redis, queue_name: str, source: str, sid: str) -> Detail | None:
    """None when nothing at all is known about this recording."""
    member = f"{source}:{sid}"
    pipe = redis.pipeline(transaction=False)
    pipe.hgetall(keys.recording_key(source, sid))
    pipe.lrange(keys.timeline_key(source, sid), 0, -1)
    pipe.zscore(keys.RECORDINGS_INDEX, member)
    fields_raw, timeline_raw, score = pipe.execute()
    fields = mapping(fields_raw)
    if not fields and not timeline_raw and score is None:
        return None
    first_seen = float(score) / 1000 if score is not None else optional_number(fields.get("first_seen_at"))
    timeline = [TimelineEntry.parse(e) for e in timeline_raw]
    hold = holds.holding(redis, [sid, *(fields.get(name, "") for name in PARENT_FIELDS)])
    return Detail(source, sid, first_seen, fields, timeline, _jobs(redis, queue_name, source, sid), hold)


def _jobs(redis: Redis, queue_name: str, source: str, sid: str) -> list[JobView]:
    ids = [jobrefs.job_id(source, sid, status.value) for status in Status] + [keys.deletion_job_id(source, sid)]
    pipe = redis.pipeline(transaction=False)
    for job_id in ids:
        pipe.zscore(jobrefs.failed_registry_key(queue_name), job_id)
    failed = pipe.execute()
    views = []
    for job, in_failed in zip(Job.fetch_many(ids, connection=redis, serializer=JSONSerializer), failed, strict=False):
        if job is None:
            continue
        result = job.latest_result()
        line = causes.last_line(result.exc_string) if result is not None and result.exc_string else ""
        retries = job.retries_left
        views.append(JobView(
            id=job.id, status=_status(job), retries_left=integer(retries) if retries is not None else None,
            enqueued_at=epoch(job.enqueued_at), started_at=epoch(job.started_at), ended_at=epoch(job.ended_at),
            failed=in_failed is not None, error=causes.headline(line) if line else "",
            hint=causes.explain(line) if in_failed is not None else "",
        ))
    return views


def _status(job: Job) -> str:
    status = job.get_status(refresh=False)
    return str(getattr(status, "value", status) or "")
