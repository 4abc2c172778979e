"""Turns a failed job's traceback into a cause that groups alike failures (pure, no I/O)."""

from __future__ import annotations

import hashlib
import re

# What our jobs raise after classifying a failure; its message alone is what an operator needs.
_JOB_FAILED = "workers.failures.JobFailed: "
_SID = re.compile(r"\b([A-Z]{2})[0-9a-fA-F]{32}\b")
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_LONG_HEX = re.compile(r"\b[0-9a-fA-F]{16,}\b")
_QUERY = re.compile(r"\?[^\s'\"]*")
# Numbers vary between alike failures (sizes, timings, attempts) and are replaced, except an HTTP
# status or a Twilio error code, which *are* the cause: "Twilio answered 403 (code 20003)".
_NUMBER = re.compile(r"(?<![\w.])(?<!answered )(?<!code )(?<!HTTP )(?<!status )\d+(?:\.\d+)?(?![\w.])")

UNKNOWN = "no error recorded (the job may have been abandoned or timed out)"
MAX_LENGTH = 300


def last_line(exc_string: str | None) -> str:
    """The exception line of a traceback: the line RQ and `rq info` show for a failed job."""
    lines = [line.strip() for line in (exc_string or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def headline(line: str) -> str:
    """The line as shown: our classified failures without their exception class."""
    line = line.removeprefix(_JOB_FAILED)
    return line[:MAX_LENGTH] if line else UNKNOWN


_EXPLAIN = {
    "permanent": "Twilio refused in a way no retry can fix (credentials, permissions, a bad request), so the "
                 "worker stopped at once. Fix the cause, then replay.",
    "transient": "Twilio or the network kept failing until the retries ran out. Replay once Twilio answers again.",
    "not_found": "Twilio did not know the recording after several tries.",
}


def explain(line: str) -> str:
    """One sentence on what a kind of failure means and what to do about it."""
    kind = headline(line).partition(":")[0]
    if kind in _EXPLAIN:
        return _EXPLAIN[kind]
    if "JobRefused" in line:
        return ("The job named a function the workers do not run, so it never ran: someone who can write to Redis "
                "put it there. Check who can reach Redis and its password (deploy/README.md), then delete the job.")
    if "JobTimeoutException" in line:
        return "The job ran longer than JOB_TIMEOUT_SECONDS and was stopped. Replay it; raise the timeout if it recurs."
    return "An unexpected error, not one the worker classifies: look for the job id in the worker's logs, then replay."


def normalise(line: str) -> str:
    """The cause with what differs between alike failures (SIDs, sizes, URLs' queries) taken out."""
    text = headline(line)
    text = _SID.sub(lambda m: f"{m.group(1)}…", text)
    text = _UUID.sub("…", text)
    text = _LONG_HEX.sub("…", text)
    text = _QUERY.sub("?…", text)
    return _NUMBER.sub("N", text)


def cause_id(cause: str) -> str:
    """A short stable name for a cause, safe in a URL."""
    return hashlib.sha256(cause.encode("utf-8")).hexdigest()[:12]
