"""Backoff with jitter, applied to the running RQ job so RQ's own Retry machinery schedules it."""

from __future__ import annotations

import math
import random

from rq.job import Job

CAP_SECONDS = 900.0


def backoff(attempt: int, base: float, retry_after: float | None = None) -> int:
    """Exponential backoff with jitter; never sooner than Twilio's Retry-After asks.

    Jitter spreads the retries of many jobs that failed together (a 429 storm) over time.
    """
    ceiling = min(CAP_SECONDS, base * (2**attempt))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after + random.uniform(0, 1))
    return math.ceil(delay)


def attempts_so_far(job: Job, retry_max: int) -> int:
    return max(0, retry_max - (job.retries_left or 0))


def retry_later(job: Job, delay: int) -> None:
    """RQ reads the next interval from `retry_intervals`; one entry means 'this one'."""
    job.retry_intervals = [delay]


def stop_retrying(job: Job) -> None:
    job.retries_left = 0


def wait_for(seconds: float) -> int:
    """Whole seconds (RQ schedules in them), never sooner than asked."""
    return max(1, math.ceil(seconds))


def retry_free(job: Job, delay: int) -> None:
    """A retry that does not count: RQ takes one from `retries_left` as it schedules it."""
    job.retries_left = (job.retries_left or 0) + 1
    retry_later(job, delay)
