"""Deleting at Twilio after a verified archive: each source's DELETE exactly once, never a held
recording, never one whose stored copy was altered, a 404 after our own delete counted as done."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.serializers import JSONSerializer

from receiver.kernel import holds, keys, stats
from tests.conftest import ACCOUNT_SID, Receiver, drain
from tests.e2e.test_sources_pipeline import legacy_callback, media_callback, video_callback
from tests.e2e.test_voice_pipeline import callback as voice_callback
from tests.support.console.helpers import PASSWORD, SECRET_KEY, USER, sign_in
from tests.support.rq_jobs import failure_trace
from workers.commands.settings import Settings
from workers.jobs import deletion_schedule
from workers.jobs.catalog import Catalog

ON = {"delete_at_twilio": "after-archive", "delete_delay": "0"}
# source -> (how the stand-in adds one, its callback, the DELETE path of a recording, the media extension)
SOURCES: dict[str, tuple[str, Callable[..., dict[str, str]], Callable[[str], str], str]] = {
    "voice": ("add_voice", voice_callback, lambda sid: f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}.json", "wav"),
    "video": ("add_video", video_callback, lambda sid: f"/v1/Recordings/{sid}", "mka"),
    "media": ("add_media", media_callback, lambda sid: f"/v1/MediaRecordings/{sid}", "mp4"),
    "legacy": ("add_legacy", legacy_callback, lambda sid: f"/2008-08-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}", "wav"),
}


def _archive(settings: Settings, receiver: Receiver, standin: Any, source: str) -> Any:
    add, callback, _, _ = SOURCES[source]
    rec = getattr(standin.state, add)(account_sid=ACCOUNT_SID)
    assert receiver.post(receiver.url(source), callback(rec)).status_code == 204
    drain(settings)
    return rec


def _deletes(standin: Any, source: str, sid: str) -> list[int]:
    path = SOURCES[source][2](sid)
    return [r["status"] for r in standin.state.requests("DELETE") if r["path"] == path]


def _timeline(redis: Redis, source: str, sid: str) -> list[dict[str, Any]]:
    return [json.loads(e) for e in redis.lrange(keys.timeline_key(source, sid), 0, -1)]


def _deletion_job(redis: Redis, source: str, sid: str) -> Job:
    return Job.fetch(keys.deletion_job_id(source, sid), connection=redis, serializer=JSONSerializer)


def _run_scheduled_now(redis: Redis) -> None:
    """What RQ's scheduler does once a job's time has come, now."""
    queue = Queue("recordings", connection=redis, serializer=JSONSerializer)
    registry = ScheduledJobRegistry("recordings", connection=redis, serializer=JSONSerializer)
    for job_id in registry.get_job_ids():
        job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
        registry.remove(job)
        queue.enqueue_job(job)


@pytest.mark.parametrize("source", list(SOURCES))
def test_each_source_is_deleted_at_twilio_once_after_its_copy_verifies(
    source: str, pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    standin: Any, redis: Redis,
) -> None:
    settings = pipeline_settings(**ON)
    rec = _archive(settings, start_receiver(settings), standin, source)

    assert _deletes(standin, source, rec.sid) == [204]
    kept = standin.state.get(source, rec.sid)
    if source == "legacy":
        assert kept is None  # the 2008 API removes it from the account
    else:
        assert kept.status == "deleted"  # metadata kept, media gone
    media = settings.storage_path / source / ACCOUNT_SID / f"{rec.sid}.{SOURCES[source][3]}"
    assert media.read_bytes() == standin.state.media_bytes(rec, SOURCES[source][3])  # our copy stays
    state = Catalog(redis).get(source, rec.sid)
    assert state["archived_at"] and state["deleted_at_twilio"] and state["deletion"] == "deleted"
    entry = [e for e in _timeline(redis, source, rec.sid) if e["kind"] == "deletion"]
    assert [(e["outcome"], e["said"]) for e in entry] == [("deleted", "deleted at Twilio")]
    assert redis.hget(stats.DELETIONS, f"{source}|deleted") == b"1"
    # The recording job archived it: the deletion job is a job of its own, finished.
    assert _deletion_job(redis, source, rec.sid).get_status() == "finished"


def test_a_second_schedule_or_a_rerun_never_deletes_twice(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings(**ON)
    rec = _archive(settings, start_receiver(settings), standin, "voice")
    assert _deletes(standin, "voice", rec.sid) == [204]
    # Scheduling again while the job is remembered creates nothing; once forgotten, a new job
    # finds our own mark and sends no DELETE.
    deletion_schedule.schedule(settings, redis, "voice", ACCOUNT_SID, rec.sid)
    assert Queue("recordings", connection=redis, serializer=JSONSerializer).count == 0
    _deletion_job(redis, "voice", rec.sid).delete()
    deletion_schedule.schedule(settings, redis, "voice", ACCOUNT_SID, rec.sid)
    drain(settings)
    assert _deletes(standin, "voice", rec.sid) == [204]
    assert _deletion_job(redis, "voice", rec.sid).return_value() == {"deleted": "already"}


def test_a_429_is_retried_through_the_account_throttle_and_deletes_once(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings(**ON)
    rec = standin.state.add_video(account_sid=ACCOUNT_SID)
    standin.state.add_fault("DELETE", f"/v1/Recordings/{rec.sid}$", 429, times=1, retry_after="30")
    receiver = start_receiver(settings)
    assert receiver.post(receiver.url("video"), video_callback(rec)).status_code == 204
    drain(settings)
    assert _deletes(standin, "video", rec.sid) == [429]
    assert redis.pttl(f"rr:throttle:{ACCOUNT_SID}") > 20_000  # the whole account waits, not this job alone
    assert _deletion_job(redis, "video", rec.sid).id in ScheduledJobRegistry(
        "recordings", connection=redis, serializer=JSONSerializer).get_job_ids()
    redis.delete(f"rr:throttle:{ACCOUNT_SID}")  # Retry-After has passed
    _run_scheduled_now(redis)
    drain(settings)
    assert _deletes(standin, "video", rec.sid) == [429, 204]
    assert standin.state.get("video", rec.sid).status == "deleted"


def test_a_held_recording_or_call_is_not_deleted_and_waits(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings(**ON)
    receiver = start_receiver(settings)
    held_rec = standin.state.add_voice(account_sid=ACCOUNT_SID)
    held_call = standin.state.add_voice(account_sid=ACCOUNT_SID)
    holds.place(redis, held_rec.sid, "legal", "case 12")
    holds.place(redis, held_call.call_sid, "legal", "case 13")
    for rec in (held_rec, held_call):
        assert receiver.post(receiver.url(), voice_callback(rec)).status_code == 204
    before = time.time()
    drain(settings)
    after = time.time()

    assert standin.state.requests("DELETE") == []
    scheduled = ScheduledJobRegistry("recordings", connection=redis, serializer=JSONSerializer)
    for rec in (held_rec, held_call):
        # It looks again in 15 minutes (RQ keeps whole seconds).
        at = scheduled.get_scheduled_time(_deletion_job(redis, "voice", rec.sid)).timestamp()
        assert int(before) + 900 <= at <= after + 901
        assert standin.state.get("voice", rec.sid).status == "completed"
        assert Catalog(redis).get("voice", rec.sid)["archived_at"]
        # Deferred, not dropped: its job waits in the schedule, no retry spent.
        job = _deletion_job(redis, "voice", rec.sid)
        assert job.get_status() == "scheduled" and job.retries_left == settings.retry_max
        assert [e["outcome"] for e in _timeline(redis, "voice", rec.sid) if e["kind"] == "deletion"] == ["held"]
    listed = {p.sid: p for p in deletion_schedule.pending(settings, redis)}
    assert listed[held_rec.sid].hold is not None and listed[held_rec.sid].hold.reason == "case 12"
    assert listed[held_call.sid].hold is not None and listed[held_call.sid].hold.sid == held_call.call_sid

    # Another look while still held adds nothing to the timeline (a long hold must not push the
    # recording's history out of it) and leaves the job waiting again.
    redis.delete(keys.deletion_job_id("voice", held_call.sid))  # only the other one looks now
    scheduled.remove(keys.deletion_job_id("voice", held_call.sid))
    _run_scheduled_now(redis)
    drain(settings)
    assert [e["outcome"] for e in _timeline(redis, "voice", held_rec.sid) if e["kind"] == "deletion"] == ["held"]
    assert _deletion_job(redis, "voice", held_rec.sid).get_status() == "scheduled"
    assert redis.hget(stats.DELETIONS, "voice|held") == b"2"

    # Released: the next look deletes it.
    assert holds.release(redis, held_rec.sid)
    _run_scheduled_now(redis)
    drain(settings)
    assert _deletes(standin, "voice", held_rec.sid) == [204]
    assert _deletes(standin, "voice", held_call.sid) == []


def test_an_altered_stored_copy_is_never_deleted_and_fails_loudly(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis,
    capfd: pytest.CaptureFixture[str], start_console: Callable[[Settings], str],
) -> None:
    off = pipeline_settings()
    rec = _archive(off, start_receiver(off), standin, "voice")
    media = off.storage_path / "voice" / ACCOUNT_SID / f"{rec.sid}.wav"
    data = bytearray(media.read_bytes())
    data[100] ^= 0xFF  # same size, other sha256
    media.write_bytes(bytes(data))

    on = pipeline_settings(**ON)
    deletion_schedule.schedule(on, redis, "voice", ACCOUNT_SID, rec.sid)
    drain(on)

    assert standin.state.requests("DELETE") == []
    assert standin.state.get("voice", rec.sid).status == "completed"
    job = _deletion_job(redis, "voice", rec.sid)
    assert job.id in FailedJobRegistry("recordings", connection=redis, serializer=JSONSerializer).get_job_ids()
    assert job.retries_left == 0
    last = failure_trace(job).strip().splitlines()[-1]
    assert "permanent:" in last and "does not match its archive record" in last
    errors = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    assert any(e["level"] == "error" and e["event"] == "stored copy failed verification: not deleted at Twilio"
               and e.get("sid") == rec.sid for e in errors)
    assert [e["outcome"] for e in _timeline(redis, "voice", rec.sid) if e["kind"] == "deletion"] == ["refused"]
    assert "deleted_at_twilio" not in Catalog(redis).get("voice", rec.sid)
    # Visible in the console: among the failures, on the recording's page, and replayable once fixed.
    console = sign_in(start_console(pipeline_settings(admin_username=USER, admin_password=PASSWORD, admin_secret_key=SECRET_KEY)))
    failures = console.get("/failures").text
    assert "does not match its archive record" in failures
    [cause] = re.findall(r'href="(/failures/[0-9a-f]+)"', failures)
    listed = console.get(cause).text
    assert job.id in listed and f"/recordings/voice/{rec.sid}" in listed
    page = console.get(f"/recordings/voice/{rec.sid}").text
    assert "Job failed: permanent:" in page and f"/jobs/{job.id}/replay" in page


def test_a_missing_stored_copy_is_never_deleted(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    off = pipeline_settings()
    rec = _archive(off, start_receiver(off), standin, "video")
    (off.storage_path / "video" / ACCOUNT_SID / f"{rec.sid}.mka").unlink()
    on = pipeline_settings(**ON)
    deletion_schedule.schedule(on, redis, "video", ACCOUNT_SID, rec.sid)
    drain(on)
    assert standin.state.requests("DELETE") == []
    assert "not in storage" in failure_trace(_deletion_job(redis, "video", rec.sid))


def test_a_404_after_our_own_earlier_delete_is_done(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    off = pipeline_settings()
    rec = _archive(off, start_receiver(off), standin, "voice")
    # An earlier run marked its request and Twilio deleted it, but the answer never came back.
    redis.hset(keys.deletion_key("voice", rec.sid), "requested_at", "1")
    standin.state.get("voice", rec.sid).status = "deleted"
    on = pipeline_settings(**ON)
    deletion_schedule.schedule(on, redis, "voice", ACCOUNT_SID, rec.sid)
    drain(on)
    assert _deletes(standin, "voice", rec.sid) == [404]
    assert _deletion_job(redis, "voice", rec.sid).get_status() == "finished"
    assert Catalog(redis).get("voice", rec.sid)["deleted_at_twilio"]


@pytest.mark.parametrize("status", [404, 410])
def test_a_media_recording_twilio_no_longer_deletes_is_nothing_to_delete(
    status: int, pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    standin: Any, redis: Redis,
) -> None:
    settings = pipeline_settings(**ON)
    rec = standin.state.add_media(account_sid=ACCOUNT_SID)
    standin.state.add_fault("DELETE", f"/v1/MediaRecordings/{rec.sid}$", status, times=1)
    receiver = start_receiver(settings)
    assert receiver.post(receiver.url("media"), media_callback(rec)).status_code == 204
    drain(settings)
    assert _deletes(standin, "media", rec.sid) == [status]
    assert _deletion_job(redis, "media", rec.sid).get_status() == "finished"
    entry = [e for e in _timeline(redis, "media", rec.sid) if e["kind"] == "deletion"]
    assert [(e["outcome"], e["said"]) for e in entry] == [("nothing_to_delete", "nothing to delete at Twilio")]


def test_with_the_policy_off_nothing_is_scheduled(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings()
    rec = _archive(settings, start_receiver(settings), standin, "voice")
    assert Catalog(redis).get("voice", rec.sid)["archived_at"]
    assert standin.state.requests("DELETE") == [] and not redis.exists(keys.deletion_job_id("voice", rec.sid))


def test_a_delay_schedules_the_deletion_that_far_ahead(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings(delete_at_twilio="after-archive", delete_delay="12h")
    rec = _archive(settings, start_receiver(settings), standin, "voice")
    assert standin.state.requests("DELETE") == []
    [due] = deletion_schedule.pending(settings, redis)
    assert due.sid == rec.sid and due.hold is None and due.due is not None
    assert abs(due.due.timestamp() - (float(Catalog(redis).get("voice", rec.sid)["archived_at"]) + 12 * 3600)) < 120


# -- the reconciler after a deletion -------------------------------------------------------------

def _forget_ledger(redis: Redis) -> None:
    """What LEDGER_TTL_SECONDS does in the end: the dedupe records are gone."""
    for key in redis.scan_iter("rr:ledger:*"):
        redis.delete(key)


@pytest.mark.parametrize("source", ["voice", "video"])
def test_the_reconciler_never_queues_a_recording_we_deleted(
    source: str, pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    standin: Any, redis: Redis,
) -> None:
    from workers.reconcile import reconciler

    settings = pipeline_settings(**ON)
    rec = _archive(settings, start_receiver(settings), standin, source)
    assert _deletes(standin, source, rec.sid) == [204]
    _forget_ledger(redis)

    # Twilio still lists it (voice: soft-deleted, with IncludeSoftDeleted), as deleted.
    report = reconciler.run_once(settings, sources=[source])
    assert report.ok and report.total("queued") == 0
    # And a list that lags behind the deletion, still calling it completed, queues nothing either.
    standin.state.get(source, rec.sid).status = "completed"
    report = reconciler.run_once(settings, sources=[source])
    [row] = report.rows
    assert (row.seen, row.missing, row.queued, row.deleted) == (1, 0, 0, 1)
    assert Queue("recordings", connection=redis, serializer=JSONSerializer).count == 0
    drain(settings)
    assert _deletes(standin, source, rec.sid) == [204]


# -- transcriptions ------------------------------------------------------------------------------

def test_a_recording_twilio_is_transcribing_waits_for_the_transcription(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings(**ON)
    receiver = start_receiver(settings)
    rec = standin.state.add_voice(account_sid=ACCOUNT_SID)
    standin.state.add_transcription(rec.sid, "completed")
    transcription = standin.state.add_transcription(rec.sid, "in-progress")
    assert receiver.post(receiver.url(), voice_callback(rec)).status_code == 204
    drain(settings)

    assert _deletes(standin, "voice", rec.sid) == []
    job = _deletion_job(redis, "voice", rec.sid)
    assert job.get_status() == "scheduled" and job.retries_left == settings.retry_max
    at = ScheduledJobRegistry("recordings", connection=redis, serializer=JSONSerializer).get_scheduled_time(job).timestamp()
    assert at <= time.time() + 301  # it looks again within 5 minutes
    assert [e["outcome"] for e in _timeline(redis, "voice", rec.sid) if e["kind"] == "deletion"] == ["transcribing"]
    assert standin.state.requests("GET", f"/Recordings/{rec.sid}/Transcriptions.json")

    transcription.status = "completed"  # its callback has gone out
    _run_scheduled_now(redis)
    drain(settings)
    assert _deletes(standin, "voice", rec.sid) == [204]


def test_past_the_transcription_wait_the_recording_is_deleted_all_the_same(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    off = pipeline_settings()
    rec = _archive(off, start_receiver(off), standin, "voice")
    standin.state.add_transcription(rec.sid, "in-progress")
    # A run found it transcribing two hours ago; the wait is one hour.
    redis.hset(keys.deletion_key("voice", rec.sid), "transcribing_since", "1")
    on = pipeline_settings(**ON, delete_transcription_wait="1h")
    deletion_schedule.schedule(on, redis, "voice", ACCOUNT_SID, rec.sid)
    drain(on)
    assert _deletes(standin, "voice", rec.sid) == [204]


def test_with_no_transcription_wait_transcriptions_are_not_asked_for(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings(**ON, delete_transcription_wait="0")
    receiver = start_receiver(settings)
    rec = standin.state.add_voice(account_sid=ACCOUNT_SID)
    standin.state.add_transcription(rec.sid, "in-progress")
    assert receiver.post(receiver.url(), voice_callback(rec)).status_code == 204
    drain(settings)
    assert _deletes(standin, "voice", rec.sid) == [204]
    assert standin.state.requests("GET", "/Transcriptions.json") == []


def test_the_reconciler_still_queues_one_whose_delete_was_only_attempted(
    pipeline_settings: Callable[..., Settings], standin: Any, redis: Redis
) -> None:
    from workers.reconcile import reconciler

    settings = pipeline_settings()
    rec = standin.state.add_voice(account_sid=ACCOUNT_SID)
    # A DELETE that went out and failed for good (a 403, say) leaves only `requested_at`: the
    # recording is still at Twilio, and a missing callback of it is still worth finding.
    redis.hset(keys.deletion_key("voice", rec.sid), "requested_at", "1")
    report = reconciler.run_once(settings, sources=["voice"])
    assert report.total("queued") == 1


def test_a_recording_someone_else_deleted_is_gone_not_a_failure_and_a_403_fails_for_good(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    off = pipeline_settings()
    receiver = start_receiver(off)
    gone = _archive(off, receiver, standin, "video")
    refused = _archive(off, receiver, standin, "voice")
    standin.state.get("video", gone.sid).status = "deleted"  # deleted in Twilio's console, not by us
    standin.state.add_fault("DELETE", f"{refused.sid}.json$", 403, times=1)
    on = pipeline_settings(**ON)
    deletion_schedule.schedule(on, redis, "video", ACCOUNT_SID, gone.sid)
    deletion_schedule.schedule(on, redis, "voice", ACCOUNT_SID, refused.sid)
    drain(on)

    assert _deletes(standin, "video", gone.sid) == [404]
    assert _deletion_job(redis, "video", gone.sid).return_value() == {"deleted": "gone"}
    state = Catalog(redis).get("video", gone.sid)
    assert state["deletion"] == "gone" and "deleted_at_twilio" not in state

    assert _deletes(standin, "voice", refused.sid) == [403]
    job = _deletion_job(redis, "voice", refused.sid)
    assert job.id in FailedJobRegistry("recordings", connection=redis, serializer=JSONSerializer).get_job_ids()
    assert "permanent: Twilio answered 403" in failure_trace(job).strip().splitlines()[-1]
    assert standin.state.get("voice", refused.sid).status == "completed"
    assert redis.hget(stats.DELETIONS, "voice|failed") == b"1"
