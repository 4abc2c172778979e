"""Voice end to end: signed callback → receiver → Redis → RQ worker → Twilio stand-in → storage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.serializers import JSONSerializer

from tests.conftest import ACCOUNT_SID, Receiver, drain
from tests.support.paths import REPO_ROOT
from tests.support.rq_jobs import failure_trace
from workers.commands.settings import Settings
from workers.jobs.catalog import Catalog
from workers.storage.local import PARTS

ROOT = REPO_ROOT


def callback(recording: Any, status: str = "completed", **extra: str) -> dict[str, str]:
    params = {
        "AccountSid": ACCOUNT_SID, "CallSid": recording.call_sid, "RecordingSid": recording.sid,
        "RecordingStatus": status, "RecordingDuration": str(recording.duration), "RecordingChannels": "1",
        "RecordingSource": "OutboundAPI", "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording.sid}",
    }
    params.update(extra)
    return params


def state(redis: Redis, sid: str) -> dict[str, str]:
    return Catalog(redis).get("voice", sid)


def test_completed_recording_is_archived_with_metadata(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings()
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID, duration=42)
    assert receiver.post(receiver.url(), callback(recording)).status_code == 204
    drain(settings)

    media = settings.storage_path / "voice" / ACCOUNT_SID / f"{recording.sid}.wav"
    assert media.read_bytes() == standin.state.media_bytes(recording, "wav")
    metadata = json.loads(media.with_suffix(".json").read_text())
    assert metadata["recording"]["sid"] == recording.sid and metadata["recording"]["duration"] == "42"
    assert metadata["media"]["bytes"] == media.stat().st_size
    assert state(redis, recording.sid)["status"] == "completed" and state(redis, recording.sid)["archived_at"]
    assert not list(media.parent.rglob("*.part"))
    # The media was fetched with Basic auth from the configured host, once.
    fetches = standin.state.requests("GET", f"{recording.sid}.wav")
    assert [f["username"] for f in fetches] == [ACCOUNT_SID]


def test_mp3_is_configurable(pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any) -> None:
    settings = pipeline_settings(media_format="mp3")
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID)
    receiver.post(receiver.url(), callback(recording))
    drain(settings)
    assert (settings.storage_path / "voice" / ACCOUNT_SID / f"{recording.sid}.mp3").read_bytes() == standin.state.media_bytes(recording, "mp3")


def test_a_rerun_neither_downloads_again_nor_leaves_a_second_copy(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings()
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID)
    receiver.post(receiver.url(), callback(recording))
    drain(settings)
    job = Job.fetch(f"rr-voice-{recording.sid}-completed", connection=redis, serializer=JSONSerializer)
    Queue("recordings", connection=redis, serializer=JSONSerializer).enqueue_job(job)
    drain(settings)
    assert len(standin.state.requests("GET", f"{recording.sid}.wav")) == 1
    assert sorted(p.name for p in (settings.storage_path / "voice" / ACCOUNT_SID).iterdir()) == sorted(
        [PARTS, f"{recording.sid}.wav", f"{recording.sid}.json"]
    )


def test_out_of_order_in_progress_never_undoes_completed(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings()
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID)
    receiver.post(receiver.url(), callback(recording, "completed"))
    drain(settings)
    receiver.post(receiver.url(), callback(recording, "in-progress"))
    drain(settings)
    assert state(redis, recording.sid)["status"] == "completed"
    # And absent after completed does not flip it either.
    receiver.post(receiver.url(), callback(recording, "absent", ErrorCode="16101"))
    drain(settings)
    assert state(redis, recording.sid)["status"] == "completed"


def test_absent_records_the_error_meaning_without_calling_twilio(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings()
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID, status="absent")
    receiver.post(receiver.url(), callback(recording, "absent", ErrorCode="16102"))
    drain(settings)
    current = state(redis, recording.sid)
    assert (current["status"], current["error_code"]) == ("absent", "16102")
    assert "silent" in current["error_meaning"]
    assert standin.state.requests() == []


def test_failed_is_recorded_with_its_reason(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings()
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID, status="failed")
    receiver.post(receiver.url(), callback(recording, "failed", ErrorCode="16104"))
    drain(settings)
    current = state(redis, recording.sid)
    assert current["status"] == "failed" and current["error_meaning"] == "recording could not be stored"


def _job(redis: Redis, sid: str) -> Job:
    return Job.fetch(f"rr-voice-{sid}-completed", connection=redis, serializer=JSONSerializer)


def test_429_is_retried_later_honouring_retry_after(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings(retry_base_seconds=1)
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID)
    standin.state.add_fault("GET", f"{recording.sid}.json", 429, times=1, retry_after="30")
    receiver.post(receiver.url(), callback(recording))
    before = time.time()
    drain(settings)
    after = time.time()
    scheduled = ScheduledJobRegistry("recordings", connection=redis, serializer=JSONSerializer)
    assert scheduled.get_job_ids() == [f"rr-voice-{recording.sid}-completed"]
    # The job failed while drain() ran, and was put off by Retry-After plus under a second of
    # jitter (RQ keeps whole seconds): measured from that window, however long it took, not
    # from the enqueue, whose distance to the failure is only how busy the machine was.
    at = scheduled.get_scheduled_time(_job(redis, recording.sid)).timestamp()
    assert int(before) + 30 <= at <= after + 31
    assert _job(redis, recording.sid).retries_left == settings.retry_max - 1


def test_5xx_and_timeouts_are_retried_until_they_pass(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings(twilio_timeout_seconds=0.5)
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID)
    standin.state.add_fault("GET", f"{recording.sid}.json", 500, times=2)
    standin.state.add_fault("GET", f"{recording.sid}.wav", 503, times=1)
    standin.state.add_fault("GET", f"{recording.sid}.json", 0, times=1, delay_s=3)
    receiver.post(receiver.url(), callback(recording))
    drain(settings)
    assert state(redis, recording.sid)["archived_at"]
    # Four faults, three failed attempts: the media download runs alongside the metadata fetch,
    # so the .wav 503 and the first .json 500 fall in the same attempt.
    assert _job(redis, recording.sid).retries_left == settings.retry_max - 3


def test_404_is_retried_a_few_times_then_recorded(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings(not_found_retries=2)
    receiver = start_receiver(settings)
    missing = "RE" + "9" * 32
    params = callback(standin.state.add_voice(account_sid=ACCOUNT_SID), RecordingSid=missing)
    receiver.post(receiver.url(), params)
    drain(settings)
    assert len(standin.state.requests("GET", f"{missing}.json")) == 3
    assert state(redis, missing)["not_found"] == "1"
    assert _job(redis, missing).get_status() == "finished"


def test_other_4xx_fails_at_once_with_the_reason_on_the_job(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings()
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID)
    standin.state.add_fault("GET", f"{recording.sid}.json", 403, times=-1)
    receiver.post(receiver.url(), callback(recording))
    drain(settings)
    assert len(standin.state.requests("GET", f"{recording.sid}.json")) == 1
    failed = FailedJobRegistry("recordings", connection=redis, serializer=JSONSerializer)
    assert failed.get_job_ids() == [f"rr-voice-{recording.sid}-completed"]
    job = _job(redis, recording.sid)
    last_line = failure_trace(job).strip().splitlines()[-1]
    assert job.retries_left == 0
    assert last_line.startswith("workers.failures.JobFailed: permanent: Twilio answered 403")
    assert "test-auth-token" not in failure_trace(job)


def test_jobs_written_by_the_receiver_run_on_rqs_own_worker_command(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings()
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID)
    receiver.post(receiver.url(), callback(recording))
    env = dict(
        os.environ, REDIS_URL=settings.redis_url or "", TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else "",
        TWILIO_API_BASE_URL=standin.base_url, DATA_DIR=str(settings.data_dir),
    )
    rq = Path(sys.executable).with_name("rq")
    subprocess.run(
        [str(rq), "worker", "--burst", "--url", settings.redis_url or "", "--serializer", "rq.serializers.JSONSerializer", "recordings"],
        env=env, cwd=ROOT, check=True, capture_output=True, timeout=60,
    )
    assert (settings.storage_path / "voice" / ACCOUNT_SID / f"{recording.sid}.wav").exists()
