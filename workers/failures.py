"""Sorts what went wrong into transient (retry), not found (retry a little) and permanent (stop)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import requests
from twilio.base.exceptions import TwilioRestException

from receiver.kernel.errors import RecordingReceiverError


@dataclass(frozen=True)
class Failure:
    kind: str  # "transient", "not_found", "permanent", "deferred"
    reason: str
    retry_after: float | None = None
    status: int | None = None  # the HTTP status Twilio answered, when it answered


class TransientError(RecordingReceiverError):
    """Raised by our own code for conditions worth retrying (short download, throttle)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Deferred(RecordingReceiverError):
    """Waiting on ourselves, not on Twilio (the account's shared throttle, another run's archive
    claim): the job runs again after `wait` seconds without spending one of its retries."""

    def __init__(self, reason: str, wait: float) -> None:
        super().__init__(reason)
        self.wait = wait


class PermanentError(RecordingReceiverError):
    """Raised for conditions no retry can fix; the reason is kept on the job."""


class JobFailed(RecordingReceiverError):
    """What a job raises after classifying a failure: its message is the reason, safe to show."""


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # An HTTP date: rare from Twilio; fall back to our own backoff.


def from_status(status: int, reason: str, retry_after_header: str | None = None) -> Failure:
    if status == 429 or status >= 500:
        return Failure("transient", reason, _retry_after(retry_after_header), status)
    if status == 404:
        return Failure("not_found", reason, status=status)
    return Failure("permanent", reason, status=status)


def classify(exc: BaseException, headers: dict[str, str] | None = None) -> Failure | None:
    """None means: not a failure we know; let it propagate as a bug."""
    headers = headers or {}
    if isinstance(exc, TwilioRestException):
        reason = f"Twilio answered {exc.status} (code {exc.code}): {exc.msg}"[:500]
        return from_status(exc.status, reason, headers.get("retry-after"))
    if isinstance(exc, httpx.HTTPStatusError):
        response = exc.response
        return from_status(response.status_code, f"media answered {response.status_code}", response.headers.get("retry-after"))
    if isinstance(exc, Deferred):
        return Failure("deferred", str(exc), exc.wait)
    if isinstance(exc, TransientError):
        return Failure("transient", str(exc), exc.retry_after)
    if isinstance(exc, PermanentError):
        return Failure("permanent", str(exc))
    if isinstance(exc, (requests.Timeout, requests.ConnectionError, httpx.TransportError)):
        return Failure("transient", f"network: {type(exc).__name__}")
    return None
