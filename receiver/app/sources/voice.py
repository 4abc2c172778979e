"""Voice (API 2010-04-01) recording status callbacks."""

from __future__ import annotations

from receiver.app.form import Params
from receiver.app.sources import Ignored
from receiver.app.sources.fields import integer, kept, required, required_sid, sid
from receiver.kernel.events import RecordingEvent, Source, Status

_STATUSES = {
    "in-progress": Status.IN_PROGRESS,
    "completed": Status.COMPLETED,
    "absent": Status.ABSENT,
    "failed": Status.FAILED,
}

_DETAILS = (
    "RecordingUrl",
    "RecordingDuration",
    "RecordingChannels",
    "RecordingSource",
    "RecordingStartTime",
    "RecordingTrack",
    "ErrorCode",
)


def parse(params: Params) -> RecordingEvent | Ignored:
    recording_sid = required_sid(params, "RecordingSid", "RE")
    account_sid = required_sid(params, "AccountSid", "AC")
    call_sid = sid(params, "CallSid", "CA", optional=True)
    conference_sid = sid(params, "ConferenceSid", "CF", optional=True)
    for number in ("RecordingDuration", "RecordingChannels", "ErrorCode"):
        integer(params, number)
    raw_status = required(params, "RecordingStatus")
    status = _STATUSES.get(raw_status)
    if status is None:
        return Ignored(f"unknown RecordingStatus {raw_status[:40]!r}", recording_sid)
    related = {k: v for k, v in (("call_sid", call_sid), ("conference_sid", conference_sid)) if v}
    error_code = params.first("ErrorCode")
    return RecordingEvent(
        source=Source.VOICE,
        sid=recording_sid,
        status=status,
        account_sid=account_sid,
        occurred_at=params.first("RecordingStartTime"),
        error_code=error_code if error_code not in (None, "", "0") else None,
        related=related,
        details=kept(params, _DETAILS),
    )
