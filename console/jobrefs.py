"""How RQ job ids and registries name a recording's jobs: `rr-{source}-{sid}-{status}`, `rr-delete-{source}-{sid}`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rq.registry import FailedJobRegistry

from receiver.kernel.events import Source, Status

_SOURCES = "|".join(s.value for s in Source)
_STATUSES = "|".join(re.escape(s.value) for s in Status)
_JOB_ID = re.compile(rf"rr-(?P<source>{_SOURCES})-(?P<sid>[A-Z]{{2}}[0-9a-fA-F]{{32}})-(?P<status>{_STATUSES})")
# A recording's deletion at Twilio (receiver.kernel.keys.deletion_job_id); its JobRef status is "deletion".
_DELETION_ID = re.compile(rf"rr-delete-(?P<source>{_SOURCES})-(?P<sid>[A-Z]{{2}}[0-9a-fA-F]{{32}})")
DELETION = "deletion"
# What a job id in a URL may look like (ours, and any other job RQ may have failed on our queue).
SAFE_JOB_ID = re.compile(r"[A-Za-z0-9_.:-]{1,200}")


@dataclass(frozen=True)
class JobRef:
    source: str
    sid: str
    status: str


def job_id(source: str, sid: str, status: str) -> str:
    """The same id the receiver gives the job (receiver.kernel.keys.job_id), from plain strings."""
    return f"rr-{source}-{sid}-{status}"


def parse(value: str) -> JobRef | None:
    match = _JOB_ID.fullmatch(value.strip())
    if match:
        return JobRef(match["source"], match["sid"], match["status"])
    deletion = _DELETION_ID.fullmatch(value.strip())
    return JobRef(deletion["source"], deletion["sid"], DELETION) if deletion else None


def failed_registry_key(queue_name: str) -> str:
    # Taken from RQ itself so a change of RQ's key layout cannot silently empty the console.
    return FailedJobRegistry.key_template.format(queue_name)
