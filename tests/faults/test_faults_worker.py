"""Workers on a bad day: killed mid-download, Twilio throttling, hanging, failing until retries run out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from redis import Redis
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.serializers import JSONSerializer

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, Receiver, drain
from tests.e2e.test_voice_pipeline import callback
from tests.support.paths import REPO_ROOT
from tests.support.rq_jobs import failure_trace
from tests.support.servers import wait_for
from workers.commands.settings import Settings
from workers.jobs.catalog import Catalog
from workers.storage.local import PARTS

ROOT = REPO_ROOT


def _worker_env(settings: Settings, standin: Any, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        REDIS_URL=settings.redis_url or "", TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_BASE_URL=standin.base_url, DATA_DIR=str(settings.data_dir), LOG_FORMAT="json",
        WORKER_THREADS="1", WORKER_LEASE_SECONDS="3", WORKER_MAINTENANCE_SECONDS="1",
        # A scheduled reconcile pass falling due mid-test would take the only thread for minutes.
        RECONCILE_INTERVAL_SECONDS="0", **extra,
    )
    return env


@pytest.mark.timeout(300)
def test_worker_killed_mid_download_is_retried_and_archives_exactly_once(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings()
    receiver = start_receiver(settings)
    standin.state.media_size = 256 * 1024
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID)
    standin.state.add_fault("GET", f"{recording.sid}.wav", 0, times=1, delay_s=60)
    assert receiver.post(receiver.url(), callback(recording)).status_code == 204
    folder = settings.storage_path / "voice" / ACCOUNT_SID
    cmd = [sys.executable, "-m", "workers.commands.cli", "worker"]
    # The victim does not hold RQ's scheduler lock; a killed lock holder delays all retries by
    # the lock's 60 s lease, which is RQ's behaviour and not what this test is about.
    first = subprocess.Popen([*cmd, "--no-scheduler"], env=_worker_env(settings, standin), cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: folder.exists() and list(folder.rglob("*.part")), timeout=20, what="the download to start")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        first.kill()
    log = settings.data_dir / "second-worker.log"
    with log.open("w") as log_file:
        second = subprocess.Popen(cmd, env=_worker_env(settings, standin), cwd=ROOT, stderr=log_file)
    try:
        # Usually ~10 s (lease, then the retry interval). The deadline also allows for RQ's own
        # recovery of a job caught between dequeue and start, which waits a fixed minute.
        wait_for(lambda: Catalog(redis).get("voice", recording.sid).get("archived_at"), timeout=150,
                 what=f"the retry to archive (worker log: {log})")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    media = folder / f"{recording.sid}.wav"
    assert media.read_bytes() == standin.state.media_bytes(recording, "wav")
    assert sorted(p.name for p in folder.iterdir()) == sorted([PARTS, media.name, f"{recording.sid}.json"])
    attempts = [e for e in Catalog(redis).redis.lrange(f"rr:timeline:voice:{recording.sid}", 0, -1) if b'"outcome":"done"' in e]
    assert len(attempts) == 1


def test_sigterm_lets_the_running_job_finish(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings()
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID)
    standin.state.add_fault("GET", f"{recording.sid}.wav", 0, times=1, delay_s=2)
    receiver.post(receiver.url(), callback(recording))
    folder = settings.storage_path / "voice" / ACCOUNT_SID
    worker = subprocess.Popen([sys.executable, "-m", "workers.commands.cli", "worker"], env=_worker_env(settings, standin), cwd=ROOT, stderr=subprocess.DEVNULL)
    wait_for(lambda: folder.exists() and list(folder.rglob("*.part")), timeout=20, what="the download to start")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert Catalog(redis).get("voice", recording.sid).get("archived_at")


def test_a_429_throttles_the_whole_account_for_every_worker(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings(retry_base_seconds=1, worker_threads=1)
    receiver = start_receiver(settings)
    first, second = standin.state.add_voice(account_sid=ACCOUNT_SID), standin.state.add_voice(account_sid=ACCOUNT_SID)
    standin.state.add_fault("GET", f"{first.sid}.json", 429, times=1, retry_after="20")
    receiver.post(receiver.url(), callback(first))
    receiver.post(receiver.url(), callback(second))
    began = time.monotonic()
    drain(settings)
    spent = time.monotonic() - began
    # The second job never reached Twilio: the throttle set by the first one's 429 held it back.
    assert standin.state.requests("GET", f"{second.sid}.json") == []
    # Twilio's Retry-After, less at most the time the drain took after setting it.
    assert 20 - spent - 0.1 <= float(redis.pttl(f"rr:throttle:{ACCOUNT_SID}")) / 1000 <= 20
    scheduled = ScheduledJobRegistry("recordings", connection=redis, serializer=JSONSerializer)
    assert sorted(scheduled.get_job_ids()) == sorted([f"rr-voice-{first.sid}-completed", f"rr-voice-{second.sid}-completed"])


def test_429_without_retry_after_backs_off_exponentially(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings(retry_base_seconds=4)
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID)
    standin.state.add_fault("GET", f"{recording.sid}.json", 429, times=1)
    receiver.post(receiver.url(), callback(recording))
    drain(settings)
    job = Job.fetch(f"rr-voice-{recording.sid}-completed", connection=redis, serializer=JSONSerializer)
    assert job.retry_intervals is not None and 2 <= job.retry_intervals[0] <= 4


def test_retries_exhausted_keep_the_job_with_its_cause_ready_to_replay(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings(retry_max=2, twilio_timeout_seconds=0.5)
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID)
    standin.state.add_fault("GET", f"{recording.sid}.json", 0, times=-1, hang=True)
    receiver.post(receiver.url(), callback(recording))
    drain(settings)
    job_id = f"rr-voice-{recording.sid}-completed"
    assert FailedJobRegistry("recordings", connection=redis, serializer=JSONSerializer).get_job_ids() == [job_id]
    job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    assert failure_trace(job).strip().splitlines()[-1] == "workers.failures.JobFailed: transient: network: ReadTimeout"
    standin.state.clear_faults()
    standin.state.release_hangs()
    FailedJobRegistry("recordings", connection=redis, serializer=JSONSerializer).requeue(job_id)
    drain(settings)
    assert Catalog(redis).get("voice", recording.sid).get("archived_at")
