"""Names of everything the pipeline keeps in Redis, in one place for receiver, workers and console."""

from __future__ import annotations

from receiver.kernel.events import RecordingEvent

PREFIX = "rr"
JOB_FUNCTION = "workers.jobs.process_recording"
RECONCILE_FUNCTION = "workers.reconcile.reconcile"
DELETE_FUNCTION = "workers.jobs.delete_recording"
DELIVER_FUNCTION = "workers.jobs.deliver_webhook"
REACT_FUNCTION = "workers.jobs.run_reaction"

# Every recording, newest first: member "{source}:{sid}", score = first seen (epoch ms).
RECORDINGS_INDEX = f"{PREFIX}:recordings"
TIMELINE_LIMIT = 200


def source_index(source: str) -> str:
    """Like RECORDINGS_INDEX, only this source's recordings."""
    return f"{RECORDINGS_INDEX}:source:{source}"


def status_index(status: str) -> str:
    """Like RECORDINGS_INDEX, only recordings whose current status is this one."""
    return f"{RECORDINGS_INDEX}:status:{status}"


def ledger_key(event: RecordingEvent) -> str:
    """One per (recording, status): the dedupe record. Outlives RQ's job TTL on purpose."""
    return ledger_key_of(event.source.value, event.sid, event.status.value)


def ledger_key_of(source: str, sid: str, status: str) -> str:
    return f"{PREFIX}:ledger:{source}:{sid}:{status}"


def job_id(event: RecordingEvent) -> str:
    return job_id_of(event.source.value, event.sid, event.status.value)


def job_id_of(source: str, sid: str, status: str) -> str:
    return f"rr-{source}-{sid}-{status}"


def recording_key(source: str, sid: str) -> str:
    """Hash with the recording's current state, metadata pointers and search fields."""
    return f"{PREFIX}:rec:{source}:{sid}"


def timeline_key(source: str, sid: str) -> str:
    """List of JSON entries: callbacks, job attempts, reconciler finds, replays."""
    return f"{PREFIX}:timeline:{source}:{sid}"


def related_key(parent_sid: str) -> str:
    """Set of "{source}:{sid}" recordings belonging to a call, conference or room."""
    return f"{PREFIX}:related:{parent_sid}"


def archive_lock_key(source: str, sid: str) -> str:
    return f"{PREFIX}:archiving:{source}:{sid}"


# Hash of the last reconciler pass, for the console: at, seen, missing, queued, duplicates,
# errors, and `sources` (a JSON list, one object per source and account).
RECONCILE_LAST = f"{PREFIX}:reconcile:last"


def watermark_key(account_sid: str, source: str) -> str:
    """ISO time (UTC, 'Z') from which the next reconciler pass of this account and source lists."""
    return f"{PREFIX}:reconcile:watermark:{account_sid}:{source}"


def reconcile_job_id(slot: int) -> str:
    """The scheduled pass due at epoch second `slot`: one id per slot, so a chain never doubles."""
    return f"rr-reconcile-{slot}"


def deletion_job_id(source: str, sid: str) -> str:
    """The one deletion job of a recording: scheduling it again finds it scheduled already."""
    return f"rr-delete-{source}-{sid}"


def deletion_key(source: str, sid: str) -> str:
    """Hash of our own deletion at Twilio: `requested_at` (written before the DELETE is sent),
    `deleted_at` and `outcome` (after Twilio answered). Outlives Twilio's keeping of deleted
    metadata (40 days for voice, 30 for video), so a 404 later still reads as our own delete."""
    return f"{PREFIX}:deletion:{source}:{sid}"


DELETION_MARK_TTL_SECONDS = 90 * 24 * 3600

# Hash: SID (a recording's, or a call's, conference's or room's) -> JSON {by, reason, at}.
HOLDS = f"{PREFIX}:holds"

# The backlog export (`recording-receiver export`): one at a time, resumable. RUN is a hash the
# console shows (state, window, totals, throughput, ETA, `rows` as JSON); ROWS holds each account
# and source's counts and cursor (field "{source}:{account}", JSON); CAUSES counts failures by
# cause; IN_FLIGHT maps each queued job id not settled yet to "{source}:{sid}:{account}".
EXPORT_RUN = f"{PREFIX}:export:run"
EXPORT_ROWS = f"{PREFIX}:export:rows"
EXPORT_CAUSES = f"{PREFIX}:export:causes"
EXPORT_IN_FLIGHT = f"{PREFIX}:export:in_flight"
EXPORT_LOCK = f"{PREFIX}:export:lock"
# A dry run's count of recordings to queue, per plan: the real run's ETA before its listing ends.
EXPORT_ESTIMATES = f"{PREFIX}:export:estimates"
