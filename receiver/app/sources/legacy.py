"""Legacy (API 2008-08-01) `<Record action>` requests: a recording finished, named by its RecordingUrl."""

from __future__ import annotations

from receiver.app.form import Params
from receiver.app.sources import Ignored
from receiver.app.sources.fields import integer, kept, required_sid, sid
from receiver.app.sources.twilio_urls import LEGACY_RECORDING, match
from receiver.kernel.errors import BadCallback
from receiver.kernel.events import RecordingEvent, Source, Status

_DETAILS = ("RecordingUrl", "Duration", "RecordingDuration", "Digits", "CallStatus", "ApiVersion")


def parse(params: Params) -> RecordingEvent | Ignored:
    account_sid = required_sid(params, "AccountSid", "AC")
    call_sid = sid(params, "CallSid", "CA", optional=True)
    for number in ("Duration", "RecordingDuration"):
        integer(params, number)
    url = params.first("RecordingUrl")
    if not url:
        # The caller hung up or pressed a key before anything was recorded.
        return Ignored("<Record> action without a RecordingUrl", call_sid)
    # The 2008 action request has no RecordingSid: the URL is the only place that names it.
    found = match("RecordingUrl", url, LEGACY_RECORDING, relative_ok=False)
    if found["account"] != account_sid:
        raise BadCallback("RecordingUrl names another account")
    recording_sid = found["sid"]
    given = sid(params, "RecordingSid", "RE", optional=True)
    if given and given != recording_sid:
        raise BadCallback("RecordingSid and RecordingUrl name different recordings")
    return RecordingEvent(
        source=Source.LEGACY,
        sid=recording_sid,
        status=Status.COMPLETED,
        account_sid=account_sid,
        related={"call_sid": call_sid} if call_sid else {},
        details=kept(params, _DETAILS),
    )
