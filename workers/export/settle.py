"""Which of an export's queued jobs have settled, and how: archived, failed (with its cause), or other."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from redis import Redis

from receiver.kernel import keys

# RQ's job states that mean the job will not run again by itself.
_FAILED = {"failed", "stopped", "canceled"}
_SID = re.compile(r"\b([A-Z]{2})[0-9a-fA-F]{32}\b")
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?s\b")
# A job hash not seen for this long, with no archive, counts as lost (failed).
MISSING_GRACE_SECONDS = 30.0
# Timeline entries read back to find the job's last outcome (callbacks and finds interleave).
_TAIL = 8


@dataclass(frozen=True)
class Settled:
    job_id: str
    source: str
    sid: str
    account: str
    # "archived", "failed" or "other"; `cause` says why for the last two.
    verdict: str
    cause: str | None = None


def in_flight_entry(source: str, sid: str, account: str) -> str:
    return f"{source}:{sid}:{account}"


def check(redis: Redis, in_flight: Mapping[str, str], missing: dict[str, float]) -> list[Settled]:
    """The settled ones among `in_flight` (job id -> entry); the rest are still queued or running.
    `missing` remembers since when a job's hash was seen gone (the caller keeps it between checks)."""
    items = [(job_id, *entry.split(":", 2)) for job_id, entry in in_flight.items()]
    pipe = redis.pipeline(transaction=False)
    for job_id, source, sid, _ in items:
        # The job first: one that finishes between the two reads is then seen archived, not "finished".
        pipe.hget(f"rq:job:{job_id}", "status")
        pipe.exists(f"rq:job:{job_id}")
        pipe.hget(keys.recording_key(source, sid), "archived_at")
    replies = pipe.execute()
    settled, unsure = [], []
    now = time.monotonic()
    for (job_id, source, sid, account), raw_status, exists, archived in zip(
        items, replies[::3], replies[1::3], replies[2::3], strict=True
    ):
        status = raw_status.decode() if raw_status else None
        if archived:
            settled.append(Settled(job_id, source, sid, account, "archived"))
            missing.pop(job_id, None)
        elif status in _FAILED or status == "finished":
            unsure.append((job_id, source, sid, account, status))
        elif not exists and now - missing.setdefault(job_id, now) > MISSING_GRACE_SECONDS:
            # Gone for a while, not just between two writes of its hash: it will not run.
            unsure.append((job_id, source, sid, account, None))
    for job_id, *_ in unsure:
        missing.pop(job_id, None)
    return settled + [_explained(redis, *entry) for entry in unsure]


def _explained(redis: Redis, job_id: str, source: str, sid: str, account: str, status: str | None) -> Settled:
    """Failed or finished without an archive: the job's own last word on the recording's timeline."""
    entry = _last_job_entry(redis, source, sid)
    if status == "finished":
        return Settled(job_id, source, sid, account, "other", str(entry.get("outcome") or "done"))
    if status is None:
        return Settled(job_id, source, sid, account, "failed", "the job is gone from Redis (deleted, or expired)")
    reason = entry.get("error") or f"job {status}, no error recorded (abandoned or timed out)"
    return Settled(job_id, source, sid, account, "failed", normalise(f"{entry.get('outcome') or status}: {reason}"))


def _last_job_entry(redis: Redis, source: str, sid: str) -> dict[str, object]:
    raw: list[bytes] = redis.lrange(keys.timeline_key(source, sid), -_TAIL, -1)  # type: ignore[assignment]
    for line in reversed(raw):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("kind") == "job":
            return entry
    return {}


def normalise(cause: str) -> str:
    """Alike failures under one cause: SIDs and durations taken out, one line, bounded."""
    text = _SID.sub(lambda m: f"{m.group(1)}…", " ".join(cause.split()))
    return _NUMBER.sub("…s", text)[:200]
