"""What RQ recorded about a failed job, read the way RQ 3 wants it read (not the deprecated `exc_info`)."""

from __future__ import annotations

from rq.job import Job
from rq.results import Result


def failure_trace(job: Job) -> str:
    """The traceback of the job's latest result when that result is a failure, else ""."""
    result = job.latest_result()
    if result is None or result.type != Result.Type.FAILED:
        return ""
    return result.exc_string or ""
