"""Media recording (media v1, `KV…`) status callbacks, read liberally: field names vary by product."""

from __future__ import annotations

from receiver.app.form import Params
from receiver.app.sources import Ignored
from receiver.app.sources.fields import first_of, integer, kept
from receiver.kernel.errors import BadCallback
from receiver.kernel.events import RecordingEvent, Source, Status
from receiver.kernel.sids import is_sid

_STATUSES = {
    "processing": Status.IN_PROGRESS,
    "completed": Status.COMPLETED,
    "deleted": Status.DELETED,
    "failed": Status.FAILED,
}
# Event-style values ("media-recording-completed") carry the status after one of these.
_EVENT_PREFIXES = ("media-recording-", "mediarecording-", "recording-")

# Form callbacks use Twilio's CamelCase; JSON ones (signed with bodySHA256) may use snake_case.
_SID_NAMES = ("MediaRecordingSid", "media_recording_sid", "Sid", "sid")
_STATUS_NAMES = ("Status", "status", "StatusCallbackEvent", "MediaRecordingStatus")
_ACCOUNT_NAMES = ("AccountSid", "account_sid")
_SOURCE_NAMES = ("SourceSid", "source_sid")
_PROCESSOR_NAMES = ("ProcessorSid", "processor_sid")
_TIME_NAMES = ("Timestamp", "DateUpdated", "date_updated", "DateCreated", "date_created")

_DETAILS = (
    "ProcessorSid", "SourceSid", "Format", "Duration", "Resolution", "MediaSize", "DateCreated",
    "DateUpdated", "Timestamp", "ErrorCode", "ErrorMessage", "StatusCallbackEvent",
    "processor_sid", "source_sid", "format", "duration", "resolution", "media_size",
    "date_created", "date_updated",
)


def _sid_field(params: Params, names: tuple[str, ...], prefix: str, what: str, optional: bool = False) -> str | None:
    found = first_of(params, names)
    if found is None:
        if optional:
            return None
        raise BadCallback(f"{what} is missing")
    name, value = found
    if not is_sid(value, prefix):
        raise BadCallback(f"{name} is not a {prefix} SID")
    return value


def _status(params: Params) -> tuple[Status | None, str]:
    found = first_of(params, _STATUS_NAMES)
    if found is None:
        raise BadCallback("Status is missing")
    raw = found[1].strip().lower()
    for prefix in _EVENT_PREFIXES:
        if raw.startswith(prefix):
            raw = raw[len(prefix):]
            break
    return _STATUSES.get(raw), found[1]


def parse(params: Params) -> RecordingEvent | Ignored:
    recording_sid = _sid_field(params, _SID_NAMES, "KV", "MediaRecordingSid")
    assert recording_sid is not None
    account_sid = _sid_field(params, _ACCOUNT_NAMES, "AC", "AccountSid")
    assert account_sid is not None
    _sid_field(params, _PROCESSOR_NAMES, "ZX", "ProcessorSid", optional=True)
    for number in ("Duration", "MediaSize", "ErrorCode", "duration", "media_size"):
        integer(params, number)
    status, raw_status = _status(params)
    if status is None:
        return Ignored(f"unknown media recording status {raw_status[:40]!r}", recording_sid)
    related: dict[str, str] = {}
    source = first_of(params, _SOURCE_NAMES)
    # A MediaProcessor records a room (RM…) or another source; only a room is a parent we index.
    if source and is_sid(source[1], "RM"):
        related["room_sid"] = source[1]
    error_code = params.first("ErrorCode")
    when = first_of(params, _TIME_NAMES)
    return RecordingEvent(
        source=Source.MEDIA,
        sid=recording_sid,
        status=status,
        account_sid=account_sid,
        occurred_at=when[1] if when else None,
        error_code=error_code if error_code not in (None, "", "0") else None,
        related=related,
        details=kept(params, _DETAILS),
    )
