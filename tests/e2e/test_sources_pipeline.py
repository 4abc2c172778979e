"""Video, media and legacy end to end: independently signed callback → receiver → Redis → RQ worker →
Twilio stand-in (REST, /Media redirect, signed URL) → storage, metadata and catalog."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.serializers import JSONSerializer

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, Receiver, drain
from tests.support.rq_jobs import failure_trace
from tests.support.twilio_signing import sign
from workers.commands.settings import Settings
from workers.jobs.catalog import Catalog


def video_callback(rec: Any, event: str = "recording-completed", **extra: str) -> dict[str, str]:
    params = {
        "AccountSid": ACCOUNT_SID, "RoomSid": rec.room_sid, "RoomName": "standup", "RoomStatus": "in-progress",
        "RoomType": "group", "StatusCallbackEvent": event, "Timestamp": "2024-05-01T10:00:00.120Z", "SequenceNumber": "4",
        "ParticipantSid": rec.participant_sid, "ParticipantIdentity": "alice", "RecordingSid": rec.sid,
        "RecordingUri": f"/v1/Recordings/{rec.sid}", "SourceSid": rec.source_sid, "TrackName": rec.track_name,
        "Container": rec.container_format, "Codec": rec.codec, "Type": rec.type, "OffsetFromTwilioVideoEpoch": str(rec.offset),
    }
    if event == "recording-completed":
        params.update(Size="2048", Duration=str(rec.duration), MediaUri=f"/v1/Recordings/{rec.sid}/Media")
    params.update(extra)
    return params


def media_callback(rec: Any, status: str = "completed", **extra: str) -> dict[str, str]:
    params = {
        "AccountSid": ACCOUNT_SID, "MediaRecordingSid": rec.sid, "Status": status, "ProcessorSid": rec.processor_sid,
        "SourceSid": rec.source_sid, "Format": rec.format, "Duration": str(rec.duration),
        "DateCreated": "2024-05-01T10:00:00Z", "DateUpdated": "2024-05-01T10:01:00Z",
    }
    params.update(extra)
    return params


def legacy_callback(rec: Any, **extra: str) -> dict[str, str]:
    params = {
        "AccountSid": ACCOUNT_SID, "CallSid": rec.call_sid, "ApiVersion": "2008-08-01", "CallStatus": "in-progress",
        "Digits": "#", "Duration": str(rec.duration),
        "RecordingUrl": f"http://api.twilio.com/2008-08-01/Accounts/{ACCOUNT_SID}/Recordings/{rec.sid}",
    }
    params.update(extra)
    return params


def stored(settings: Settings, source: str, sid: str, ext: str) -> tuple[Path, dict[str, Any]]:
    media = settings.storage_path / source / ACCOUNT_SID / f"{sid}.{ext}"
    return media, json.loads(media.with_suffix(".json").read_text())


def queue_length(redis: Redis) -> int:
    return Queue("recordings", connection=redis, serializer=JSONSerializer).count


@pytest.fixture
def pipeline(pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver]) -> tuple[Settings, Receiver]:
    settings = pipeline_settings()
    return settings, start_receiver(settings)


# -- video ---------------------------------------------------------------------------------------

def test_video_completed_is_archived_from_the_signed_url_without_credentials(
    pipeline: tuple[Settings, Receiver], standin: Any, redis: Redis
) -> None:
    settings, receiver = pipeline
    rec = standin.state.add_video(account_sid=ACCOUNT_SID, duration=31)
    assert receiver.post(receiver.url("video"), video_callback(rec)).status_code == 204
    drain(settings)

    media, metadata = stored(settings, "video", rec.sid, "mka")
    assert media.read_bytes() == standin.state.media_bytes(rec, "mka")
    assert metadata["recording"]["sid"] == rec.sid and metadata["recording"]["status"] == "completed"
    assert metadata["recording"]["grouping_sids"]["room_sid"] == rec.room_sid
    sha256 = hashlib.sha256(media.read_bytes()).hexdigest()
    assert metadata["media"] == {"file": f"{rec.sid}.mka", "bytes": media.stat().st_size, "sha256": sha256, "format": "mka"}
    state = Catalog(redis).get("video", rec.sid)
    assert state["status"] == "completed" and state["archived_at"] and state["room_sid"] == rec.room_sid
    # /Media with Twilio auth on the configured host; the signed URL with no credentials at all.
    assert [r["username"] for r in standin.state.requests("GET", f"/v1/Recordings/{rec.sid}/Media")] == [ACCOUNT_SID]
    signed = standin.state.requests("GET", f"/_signed/{rec.sid}")
    assert [(r["username"], r["status"]) for r in signed] == [(None, 200)]


def test_video_failed_and_started_are_recorded_without_calling_twilio(
    pipeline: tuple[Settings, Receiver], standin: Any, redis: Redis
) -> None:
    settings, receiver = pipeline
    started = standin.state.add_video(account_sid=ACCOUNT_SID, status="processing")
    failed = standin.state.add_video(account_sid=ACCOUNT_SID, status="failed")
    receiver.post(receiver.url("video"), video_callback(started, "recording-started"))
    receiver.post(receiver.url("video"), video_callback(failed, "recording-failed", FailedOperation="media-upload"))
    drain(settings)
    assert Catalog(redis).get("video", started.sid)["status"] == "in-progress"
    state = Catalog(redis).get("video", failed.sid)
    assert (state["status"], state["error_meaning"]) == ("failed", "media-upload")
    assert standin.state.requests() == []


def test_other_room_events_are_answered_and_never_queued(pipeline: tuple[Settings, Receiver], standin: Any, redis: Redis) -> None:
    _, receiver = pipeline
    rec = standin.state.add_video(account_sid=ACCOUNT_SID)
    params = {k: v for k, v in video_callback(rec, "participant-connected").items() if not k.startswith(("Recording", "Media"))}
    assert receiver.post(receiver.url("video"), params).status_code == 204
    assert queue_length(redis) == 0


def test_a_signed_url_off_the_configured_hosts_and_not_https_is_refused(
    pipeline: tuple[Settings, Receiver], standin: Any, redis: Redis
) -> None:
    settings, receiver = pipeline
    # The stand-in now points its redirect at another origin (plain HTTP, not a configured host).
    standin.state.public_base_url = standin.base_url.replace("127.0.0.1", "localhost")
    rec = standin.state.add_video(account_sid=ACCOUNT_SID)
    receiver.post(receiver.url("video"), video_callback(rec))
    drain(settings)
    job = Job.fetch(f"rr-video-{rec.sid}-completed", connection=redis, serializer=JSONSerializer)
    assert job.id in FailedJobRegistry("recordings", connection=redis, serializer=JSONSerializer).get_job_ids()
    last_line = failure_trace(job).strip().splitlines()[-1]
    assert "permanent: refusing signed media URL on http://localhost" in last_line and "Signature" not in last_line
    assert standin.state.requests("GET", "/_signed/") == []


def test_a_refused_signed_url_never_shows_its_signature_in_the_job(
    pipeline: tuple[Settings, Receiver], standin: Any, redis: Redis
) -> None:
    settings, receiver = pipeline
    standin.state.signed_url_ttl_s = -60  # every signed URL has expired when it is used: 403
    rec = standin.state.add_video(account_sid=ACCOUNT_SID)
    receiver.post(receiver.url("video"), video_callback(rec))
    drain(settings)
    job = Job.fetch(f"rr-video-{rec.sid}-completed", connection=redis, serializer=JSONSerializer)
    trace = failure_trace(job)
    assert "permanent: media answered 403" in trace.strip().splitlines()[-1]
    assert "Signature" not in trace and "Expires" not in trace
    assert [r["status"] for r in standin.state.requests("GET", "/_signed/")] == [403]


# -- media ---------------------------------------------------------------------------------------

def test_media_recording_completed_is_archived(pipeline: tuple[Settings, Receiver], standin: Any, redis: Redis) -> None:
    settings, receiver = pipeline
    rec = standin.state.add_media(account_sid=ACCOUNT_SID, duration=95)
    assert receiver.post(receiver.url("media"), media_callback(rec)).status_code == 204
    drain(settings)
    media, metadata = stored(settings, "media", rec.sid, "mp4")
    assert media.read_bytes() == standin.state.media_bytes(rec, "mp4")
    assert metadata["recording"]["processor_sid"] == rec.processor_sid and metadata["recording"]["media_size"] == media.stat().st_size
    assert Catalog(redis).get("media", rec.sid)["room_sid"] == rec.source_sid
    assert [r["username"] for r in standin.state.requests("GET", f"/_signed/{rec.sid}")] == [None]


def test_media_callback_with_other_field_names_and_a_late_processing(
    pipeline: tuple[Settings, Receiver], standin: Any, redis: Redis
) -> None:
    settings, receiver = pipeline
    rec = standin.state.add_media(account_sid=ACCOUNT_SID)
    params = media_callback(rec)
    params["Sid"] = params.pop("MediaRecordingSid")
    params["StatusCallbackEvent"] = params.pop("Status")
    receiver.post(receiver.url("media"), params)
    drain(settings)
    receiver.post(receiver.url("media"), media_callback(rec, "processing"))
    drain(settings)
    state = Catalog(redis).get("media", rec.sid)
    assert state["status"] == "completed" and state["archived_at"]


def test_media_still_processing_at_twilio_is_retried_later(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings(retry_base_seconds=1)
    receiver = start_receiver(settings)
    rec = standin.state.add_media(account_sid=ACCOUNT_SID, status="processing")
    receiver.post(receiver.url("media"), media_callback(rec))
    drain(settings)
    scheduled = ScheduledJobRegistry("recordings", connection=redis, serializer=JSONSerializer)
    assert scheduled.get_job_ids() == [f"rr-media-{rec.sid}-completed"]


def test_media_deleted_is_recorded(pipeline: tuple[Settings, Receiver], standin: Any, redis: Redis) -> None:
    settings, receiver = pipeline
    rec = standin.state.add_media(account_sid=ACCOUNT_SID, status="deleted")
    receiver.post(receiver.url("media"), media_callback(rec, "deleted"))
    drain(settings)
    assert Catalog(redis).get("media", rec.sid)["status"] == "deleted"
    assert standin.state.requests() == []


# -- legacy --------------------------------------------------------------------------------------

def test_legacy_record_action_is_archived_with_xml_metadata(pipeline: tuple[Settings, Receiver], standin: Any, redis: Redis) -> None:
    settings, receiver = pipeline
    rec = standin.state.add_legacy(account_sid=ACCOUNT_SID, duration=14)
    assert receiver.post(receiver.url("legacy"), legacy_callback(rec)).status_code == 204
    drain(settings)
    media, metadata = stored(settings, "legacy", rec.sid, "wav")
    assert media.read_bytes() == standin.state.media_bytes(rec, "wav")
    assert metadata["recording"]["sid"] == rec.sid and metadata["recording"]["account_sid"] == ACCOUNT_SID
    assert metadata["recording"]["call_sid"] == rec.call_sid and metadata["recording"]["duration"] == 14
    assert metadata["recording"]["date_created"].endswith("+00:00")
    assert Catalog(redis).get("legacy", rec.sid)["call_sid"] == rec.call_sid
    # The metadata and the media are fetched concurrently: compare as sorted lists, never in order.
    fetches = standin.state.requests("GET", f"/2008-08-01/Accounts/{ACCOUNT_SID}/Recordings/{rec.sid}")
    assert sorted((f["path"].rsplit("/", 1)[1], f["username"], f["status"]) for f in fetches) == [
        (f"{rec.sid}.wav", ACCOUNT_SID, 200), (f"{rec.sid}.xml", ACCOUNT_SID, 200)]
    # As Twilio documents it: the bare recording URL (the callback's RecordingUrl) is audio,
    # so metadata from anywhere but `.xml` could not have been archived above.
    bare = httpx.get(f"{standin.base_url}/2008-08-01/Accounts/{ACCOUNT_SID}/Recordings/{rec.sid}", timeout=10)
    assert (bare.headers["content-type"], bare.content) == ("audio/x-wav", standin.state.media_bytes(rec, "wav"))


def test_legacy_action_sent_as_get_is_accepted(pipeline: tuple[Settings, Receiver], standin: Any, redis: Redis) -> None:
    settings, receiver = pipeline
    rec = standin.state.add_legacy(account_sid=ACCOUNT_SID)
    url = str(httpx.URL(receiver.url("legacy"), params=legacy_callback(rec)))
    response = httpx.get(url, headers={"X-Twilio-Signature": sign(AUTH_TOKEN, url)}, timeout=10)
    assert response.status_code == 204
    drain(settings)
    assert Catalog(redis).get("legacy", rec.sid)["archived_at"]


# -- every new route -----------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["video", "media", "legacy"])
def test_wrong_signature_is_refused_and_nothing_is_queued(pipeline: tuple[Settings, Receiver], standin: Any, redis: Redis, source: str) -> None:
    _, receiver = pipeline
    rec = standin.state.add(source, account_sid=ACCOUNT_SID)
    params = {"video": video_callback, "media": media_callback, "legacy": legacy_callback}[source](rec)
    assert receiver.post(receiver.url(source), params, token="not-the-token").status_code == 403
    assert queue_length(redis) == 0


@pytest.mark.parametrize("source", ["video", "media", "legacy"])
def test_malformed_callback_gets_400_with_the_reason(pipeline: tuple[Settings, Receiver], standin: Any, redis: Redis, source: str) -> None:
    _, receiver = pipeline
    rec = standin.state.add(source, account_sid=ACCOUNT_SID)
    params = {"video": video_callback, "media": media_callback, "legacy": legacy_callback}[source](rec)
    params["AccountSid"] = "AC-not-a-sid"
    response = receiver.post(receiver.url(source), params)
    # An unknown account is checked against the main account's token, so this one verifies.
    assert (response.status_code, response.text.strip()) == (400, "AccountSid is not a AC SID")
    assert queue_length(redis) == 0
