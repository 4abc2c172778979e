"""Video room (video v1) status callbacks: the recording-* events of a room, every other event ignored."""

from __future__ import annotations

from receiver.app.form import Params
from receiver.app.sources import Ignored
from receiver.app.sources.fields import integer, kept, required, required_sid, sid
from receiver.app.sources.twilio_urls import VIDEO_RECORDING, match
from receiver.kernel.errors import BadCallback
from receiver.kernel.events import RecordingEvent, Source, Status

_EVENTS = {
    "recording-started": Status.IN_PROGRESS,
    "recording-completed": Status.COMPLETED,
    "recording-failed": Status.FAILED,
}

_DETAILS = (
    "RoomName", "SourceSid", "TrackName", "Container", "Codec", "Type", "Size", "Duration",
    "RecordingUri", "MediaUri", "MediaExternalLocation", "OffsetFromTwilioVideoEpoch",
    "FailedOperation", "Timestamp", "SequenceNumber",
)


def _recording_sid(params: Params) -> str:
    """RecordingSid, or the SID inside RecordingUri/MediaUri; every one that was sent must agree."""
    found: set[str] = set()
    given = sid(params, "RecordingSid", "RT", optional=True)
    if given:
        found.add(given)
    for name in ("RecordingUri", "MediaUri"):
        url = params.first(name)
        if url:
            found.add(match(name, url, VIDEO_RECORDING, relative_ok=True)["sid"])
    if not found:
        raise BadCallback("RecordingSid is missing")
    if len(found) > 1:
        raise BadCallback("RecordingSid, RecordingUri and MediaUri name different recordings")
    return found.pop()


def parse(params: Params) -> RecordingEvent | Ignored:
    account_sid = required_sid(params, "AccountSid", "AC")
    room_sid = required_sid(params, "RoomSid", "RM")
    raw_event = required(params, "StatusCallbackEvent")
    status = _EVENTS.get(raw_event)
    if status is None:
        # room-created, participant-connected, track-added, …: acknowledged, not ours to queue.
        return Ignored(f"room event {raw_event[:40]!r}", room_sid)
    recording_sid = _recording_sid(params)
    participant_sid = sid(params, "ParticipantSid", "PA", optional=True)
    sid(params, "SourceSid", "MT", optional=True)
    for number in ("Size", "Duration", "OffsetFromTwilioVideoEpoch", "SequenceNumber"):
        integer(params, number)
    related = {"room_sid": room_sid}
    if participant_sid:
        related["participant_sid"] = participant_sid
    return RecordingEvent(
        source=Source.VIDEO,
        sid=recording_sid,
        status=status,
        account_sid=account_sid,
        occurred_at=params.first("Timestamp"),
        related=related,
        details=kept(params, _DETAILS),
    )
