"""The video, media and legacy parsers on recorded payloads (tests/samples/) and on broken ones."""

from __future__ import annotations

import pytest

from receiver.app.form import Params, parse_params
from receiver.app.sources import Ignored, legacy, media, video
from receiver.kernel.errors import BadCallback
from receiver.kernel.events import RecordingEvent, Source, Status
from tests.support.paths import SAMPLES

AC = "AC0123456789abcdef0123456789abcdef"
RM, RT, MT, PA = "RM" + "c" * 32, "RT" + "d" * 32, "MT" + "e" * 32, "PA" + "f" * 32
KV, ZX, RE, CA = "KV" + "1" * 32, "ZX" + "2" * 32, "RE" + "a" * 32, "CA" + "b" * 32


def sample(source: str, name: str, **changes: str | None) -> Params:
    params = parse_params((SAMPLES / source / f"{name}.form").read_bytes().strip())
    for field, value in changes.items():
        if value is None:
            params.pop(field, None)
        else:
            params[field] = [value]
    return params


def event(result: RecordingEvent | Ignored) -> RecordingEvent:
    assert isinstance(result, RecordingEvent), result
    assert RecordingEvent.from_payload(result.to_payload()) == result
    return result


# -- video ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "status"),
    [("recording-started", Status.IN_PROGRESS), ("recording-completed", Status.COMPLETED), ("recording-failed", Status.FAILED)],
)
def test_video_recording_events_parse(name: str, status: Status) -> None:
    parsed = event(video.parse(sample("video", name)))
    assert (parsed.source, parsed.sid, parsed.status, parsed.account_sid) == (Source.VIDEO, RT, status, AC)
    assert parsed.related == {"room_sid": RM, "participant_sid": PA}
    assert parsed.occurred_at and parsed.occurred_at.startswith("2017-06-02T21:")
    assert parsed.details["SourceSid"] == MT and parsed.details["Container"] == "mka"


def test_video_details_keep_what_twilio_sent() -> None:
    completed = event(video.parse(sample("video", "recording-completed")))
    assert completed.details["Size"] == "2048" and completed.details["MediaUri"] == f"/v1/Recordings/{RT}/Media"
    assert "MediaExternalLocation" not in completed.details  # sent empty
    failed = event(video.parse(sample("video", "recording-failed")))
    assert failed.details["FailedOperation"] == "media-upload"


@pytest.mark.parametrize("name", ["participant-connected", "room-ended"])
def test_other_room_events_are_acknowledged_and_ignored(name: str) -> None:
    result = video.parse(sample("video", name))
    assert isinstance(result, Ignored) and result.sid == RM


def test_video_recording_sid_may_come_from_the_uris_alone() -> None:
    parsed = event(video.parse(sample("video", "recording-completed", RecordingSid=None)))
    assert parsed.sid == RT
    parsed = event(video.parse(sample("video", "recording-completed", RecordingSid=None, RecordingUri=None)))
    assert parsed.sid == RT


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"RecordingSid": "RT123"}, "RecordingSid is not a RT SID"),
        ({"RoomSid": "CA" + "0" * 32}, "RoomSid is not a RM SID"),
        ({"AccountSid": None}, "AccountSid is missing"),
        ({"StatusCallbackEvent": None}, "StatusCallbackEvent is missing"),
        ({"ParticipantSid": "PA-x"}, "ParticipantSid is not a PA SID"),
        ({"SourceSid": "RT" + "0" * 32}, "SourceSid is not a MT SID"),
        ({"Size": "2k"}, "Size is not a number"),
        ({"RecordingSid": None, "RecordingUri": None, "MediaUri": None}, "RecordingSid is missing"),
        ({"MediaUri": f"/v1/Recordings/RT{'0' * 32}/Media"}, "name different recordings"),
        ({"MediaUri": f"https://evil.example/v1/Recordings/{RT}/Media"}, "MediaUri is not a Twilio URL"),
        ({"RecordingUri": f"/v1/Compositions/{RT}"}, "RecordingUri does not name a recording"),
    ],
)
def test_malformed_video_callbacks_are_refused_with_the_reason(changes: dict[str, str | None], reason: str) -> None:
    with pytest.raises(BadCallback, match=reason):
        video.parse(sample("video", "recording-completed", **changes))


def test_absolute_twilio_media_uri_is_accepted() -> None:
    parsed = event(video.parse(sample("video", "recording-completed", MediaUri=f"https://video.twilio.com/v1/Recordings/{RT}/Media")))
    assert parsed.sid == RT


# -- media ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "status"),
    [("processing", Status.IN_PROGRESS), ("completed", Status.COMPLETED), ("deleted", Status.DELETED), ("failed", Status.FAILED)],
)
def test_media_recording_statuses_parse(name: str, status: Status) -> None:
    parsed = event(media.parse(sample("media", name)))
    assert (parsed.source, parsed.sid, parsed.status, parsed.account_sid) == (Source.MEDIA, KV, status, AC)
    assert parsed.related == {"room_sid": RM}
    assert parsed.details["ProcessorSid"] == ZX and parsed.occurred_at


def test_media_failed_keeps_its_error_code() -> None:
    assert event(media.parse(sample("media", "failed"))).error_code == "53302"


@pytest.mark.parametrize("value", ["completed", "media-recording-completed", "COMPLETED", "recording-completed"])
def test_media_status_is_read_liberally(value: str) -> None:
    params = sample("media", "completed", Status=None, StatusCallbackEvent=value)
    assert event(media.parse(params)).status is Status.COMPLETED


def test_media_fields_in_snake_case_from_a_json_callback() -> None:
    params = Params({"sid": [KV], "status": ["completed"], "account_sid": [AC], "source_sid": [RM], "media_size": ["10"]})
    parsed = event(media.parse(params))
    assert (parsed.sid, parsed.status, parsed.account_sid, parsed.related) == (KV, Status.COMPLETED, AC, {"room_sid": RM})


def test_unknown_media_status_is_ignored() -> None:
    assert isinstance(media.parse(sample("media", "completed", Status="paused")), Ignored)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"MediaRecordingSid": None}, "MediaRecordingSid is missing"),
        ({"MediaRecordingSid": RT}, "MediaRecordingSid is not a KV SID"),
        ({"AccountSid": "AC1"}, "AccountSid is not a AC SID"),
        ({"Status": None}, "Status is missing"),
        ({"ProcessorSid": KV}, "ProcessorSid is not a ZX SID"),
        ({"MediaSize": "big"}, "MediaSize is not a number"),
    ],
)
def test_malformed_media_callbacks_are_refused(changes: dict[str, str | None], reason: str) -> None:
    with pytest.raises(BadCallback, match=reason):
        media.parse(sample("media", "completed", **changes))


# -- legacy --------------------------------------------------------------------------------------

def test_legacy_record_action_is_a_completed_recording_named_by_its_url() -> None:
    parsed = event(legacy.parse(sample("legacy", "completed")))
    assert (parsed.source, parsed.sid, parsed.status, parsed.account_sid) == (Source.LEGACY, RE, Status.COMPLETED, AC)
    assert parsed.related == {"call_sid": CA}
    assert parsed.details["Digits"] == "#" and parsed.details["Duration"] == "14" and parsed.details["ApiVersion"] == "2008-08-01"
    # Caller numbers are not recording metadata: they stay out of the event.
    assert "From" not in parsed.details and "Caller" not in parsed.details


def test_legacy_action_without_a_recording_is_ignored() -> None:
    result = legacy.parse(sample("legacy", "hangup"))
    assert isinstance(result, Ignored) and result.sid == CA


@pytest.mark.parametrize(
    "url",
    [
        f"https://api.twilio.com/2008-08-01/Accounts/{AC}/Recordings/{RE}",
        f"https://api.twilio.com/2008-08-01/Accounts/{AC}/Recordings/{RE}.wav",
        f"https://api.dublin.ie1.twilio.com/2010-04-01/Accounts/{AC}/Recordings/{RE}",
    ],
)
def test_legacy_recording_url_variants(url: str) -> None:
    assert event(legacy.parse(sample("legacy", "completed", RecordingUrl=url))).sid == RE


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"RecordingUrl": f"https://evil.example/2008-08-01/Accounts/{AC}/Recordings/{RE}"}, "not a Twilio URL"),
        ({"RecordingUrl": f"https://user:pw@api.twilio.com/2008-08-01/Accounts/{AC}/Recordings/{RE}"}, "not a Twilio URL"),
        ({"RecordingUrl": f"ftp://api.twilio.com/2008-08-01/Accounts/{AC}/Recordings/{RE}"}, "not a Twilio URL"),
        ({"RecordingUrl": f"/2008-08-01/Accounts/{AC}/Recordings/{RE}"}, "not an absolute URL"),
        ({"RecordingUrl": f"https://api.twilio.com/2008-08-01/Accounts/{AC}/Calls/{CA}"}, "does not name a recording"),
        ({"RecordingUrl": f"https://api.twilio.com/2008-08-01/Accounts/AC{'9' * 32}/Recordings/{RE}"}, "another account"),
        ({"RecordingSid": "RE" + "0" * 32}, "name different recordings"),
        ({"AccountSid": None}, "AccountSid is missing"),
        ({"CallSid": "CA1"}, "CallSid is not a CA SID"),
        ({"Duration": "ten"}, "Duration is not a number"),
    ],
)
def test_malformed_legacy_actions_are_refused(changes: dict[str, str | None], reason: str) -> None:
    with pytest.raises(BadCallback, match=reason):
        legacy.parse(sample("legacy", "completed", **changes))
