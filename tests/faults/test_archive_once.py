"""A recording is archived once at the file level: the commit record, create-only writes, temp
files cleaned by the next attempt, claims of dead holders, and retries never spent on our throttle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Queue, Worker
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from tests.conftest import ACCOUNT_SID, Receiver, drain
from tests.e2e.test_voice_pipeline import callback
from tests.faults.test_faults_worker import ROOT, _worker_env
from tests.support.rq_jobs import failure_trace
from tests.support.servers import wait_for
from workers.commands.settings import Settings
from workers.failures import Deferred
from workers.jobs.archive_claim import ArchiveClaims
from workers.jobs.catalog import Catalog
from workers.jobs.throttle import AccountThrottle
from workers.storage.local import PARTS
from workers.storage.sweep import sweep


def _files(settings: Settings, sid: str) -> tuple[Path, Path]:
    folder = settings.storage_path / "voice" / ACCOUNT_SID
    return folder / f"{sid}.wav", folder / f"{sid}.json"


def _identity(path: Path) -> tuple[int, int]:
    """A file rewritten in place, or replaced by a rename, gets a new inode or a new ctime."""
    st = path.stat()
    return st.st_ino, st.st_ctime_ns


def _forget_archive(redis: Redis, sid: str) -> None:
    """What a run that died between its commit record and the catalog leaves behind."""
    redis.hdel(f"rr:rec:voice:{sid}", "archived_at", "media_path", "metadata_path", "media_bytes", "media_sha256")


def _replay(redis: Redis, sid: str) -> None:
    """The job runs again, as RQ's retry of a run that died would."""
    queue = Queue("recordings", connection=redis, serializer=JSONSerializer)
    queue.enqueue_job(Job.fetch(f"rr-voice-{sid}-completed", connection=redis, serializer=JSONSerializer))


@pytest.fixture
def archived(pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
             standin: Any, redis: Redis) -> tuple[Settings, Any]:
    settings = pipeline_settings()
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID)
    assert receiver.post(receiver.url(), callback(recording)).status_code == 204
    drain(settings)
    assert Catalog(redis).get("voice", recording.sid).get("archived_at")
    return settings, recording


def test_the_commit_record_names_the_media_size_and_sha256(archived: tuple[Settings, Any], redis: Redis) -> None:
    import hashlib

    settings, recording = archived
    media, record = _files(settings, recording.sid)
    body = media.read_bytes()
    entry = json.loads(record.read_text())["media"]
    assert (entry["bytes"], entry["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    assert Catalog(redis).get("voice", recording.sid)["media_sha256"] == entry["sha256"]


def test_a_run_that_died_after_its_commit_record_is_finished_without_twilio_or_a_second_write(
    archived: tuple[Settings, Any], standin: Any, redis: Redis
) -> None:
    settings, recording = archived
    media, record = _files(settings, recording.sid)
    before = (_identity(media), _identity(record))
    calls = len(standin.state.requests())
    # Killed after linking its record into place, before removing the record's temp name.
    (record.parent / PARTS).mkdir(exist_ok=True)
    (record.parent / PARTS / f".{record.name}.k9.part").write_bytes(record.read_bytes())
    _forget_archive(redis, recording.sid)
    _replay(redis, recording.sid)
    drain(settings)
    assert Catalog(redis).get("voice", recording.sid).get("archived_at")
    assert (_identity(media), _identity(record)) == before
    assert len(standin.state.requests()) == calls
    assert not list(record.parent.rglob(".*.part"))
    outcomes = [json.loads(e)["outcome"] for e in redis.lrange(f"rr:timeline:voice:{recording.sid}", 0, -1) if b'"kind":"job"' in e]
    assert sorted(outcomes) == ["done", "recovered"]


def test_media_that_no_longer_matches_its_record_fails_the_job_and_is_left_alone(
    archived: tuple[Settings, Any], standin: Any, redis: Redis
) -> None:
    settings, recording = archived
    media, record = _files(settings, recording.sid)
    with media.open("r+b") as handle:  # one flipped byte: same size, another sha256
        first = handle.read(1)
        handle.seek(0)
        handle.write(bytes([first[0] ^ 0xFF]))
    damaged = media.read_bytes()
    _forget_archive(redis, recording.sid)
    _replay(redis, recording.sid)
    drain(settings)
    job = Job.fetch(f"rr-voice-{recording.sid}-completed", connection=redis, serializer=JSONSerializer)
    assert job.id in FailedJobRegistry("recordings", connection=redis, serializer=JSONSerializer).get_job_ids()
    assert "does not match its archive record" in failure_trace(job).strip().splitlines()[-1]
    assert media.read_bytes() == damaged and json.loads(record.read_text())["media"]["bytes"] == len(damaged)


def test_the_next_attempt_removes_every_temp_file_of_its_recording(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings()
    receiver = start_receiver(settings)
    recording, other = standin.state.add_voice(account_sid=ACCOUNT_SID), "RE" + "9" * 32
    media, record = _files(settings, recording.sid)
    parts = media.parent / PARTS
    parts.mkdir(parents=True)
    # What a worker SIGKILLed mid-download and mid-record leaves; another recording's temp stays.
    leftovers = [parts / f".{media.name}.k1.part", parts / f".{record.name}.k2.part"]
    for path in [*leftovers, parts / f".{other}.wav.k3.part"]:
        path.write_bytes(b"half")
    receiver.post(receiver.url(), callback(recording))
    drain(settings)
    assert Catalog(redis).get("voice", recording.sid).get("archived_at")
    assert sorted(p.name for p in media.parent.rglob("*.part")) == [f".{other}.wav.k3.part"]


def test_the_sweep_removes_only_temp_files_older_than_the_safe_age(tmp_path: Path) -> None:
    folder = tmp_path / "voice" / ACCOUNT_SID
    folder.mkdir(parents=True)
    old, fresh, archive = folder / ".RE1.wav.a.part", folder / ".RE2.json.b.part", folder / "RE3.wav"
    for path in (old, fresh, archive):
        path.write_bytes(b"x")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    os.utime(archive, (an_hour_ago, an_hour_ago))
    assert sweep(tmp_path, older_than_seconds=900) == 1
    assert sorted(p.name for p in folder.iterdir()) == sorted([fresh.name, archive.name])


def test_a_live_claim_is_renewed_past_its_ttl_and_a_second_run_is_deferred(redis: Redis) -> None:
    claims = ArchiveClaims(redis, ttl_seconds=1)
    key = "rr:archiving:voice:RE" + "1" * 32
    with claims.hold("voice", "RE" + "1" * 32):
        token = redis.get(key)
        first = int(redis.pttl(key))
        # A renewal shows as the remaining time going back up.
        seen = [first]
        wait_for(lambda: seen.append(int(redis.pttl(key))) or seen[-1] > min(seen[:-1]), timeout=10, what="a renewal")
        with pytest.raises(Deferred) as deferred, claims.hold("voice", "RE" + "1" * 32):
            pass
        assert 0 < deferred.value.wait <= 1.0 and redis.get(key) == token
    assert redis.exists(key) == 0


def test_a_claim_of_a_killed_holder_lapses_within_its_ttl(redis_url: str, redis: Redis) -> None:
    key = "rr:archiving:voice:RE" + "2" * 32
    code = (
        "import sys, redis\nfrom workers.jobs.archive_claim import ArchiveClaims\n"
        f"claims = ArchiveClaims(redis.Redis.from_url({redis_url!r}), ttl_seconds=2)\n"
        f"with claims.hold('voice', 'RE' + '2' * 32):\n    print('held', flush=True)\n    sys.stdin.read()\n"
    )
    with subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=10)
        finally:
            holder.kill()
    assert 0 < int(redis.pttl(key)) <= 2000
    wait_for(lambda: not redis.exists(key), timeout=10, what="the dead holder's claim to lapse")


def _retries_left(redis: Redis, sid: str) -> int:
    job = Job.fetch(f"rr-voice-{sid}-completed", connection=redis, serializer=JSONSerializer)
    return int(job.retries_left or 0)


@pytest.mark.timeout(180)
def test_two_429s_on_metadata_archive_once_download_once_and_spend_no_retry_on_our_throttle(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings(retry_base_seconds=1)
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID)
    standin.state.add_fault("GET", f"{recording.sid}.json", 429, times=2, retry_after="1")
    receiver.post(receiver.url(), callback(recording))
    env = _worker_env(settings, standin, RETRY_BASE_SECONDS="1")
    worker = subprocess.Popen([sys.executable, "-m", "workers.commands.cli", "worker"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: Catalog(redis).get("voice", recording.sid).get("archived_at"), timeout=120, what="the archive")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert [r["status"] for r in standin.state.requests("GET", f"{recording.sid}.wav")] == [200]
    assert sorted(r["status"] for r in standin.state.requests("GET", f"{recording.sid}.json")) == [200, 429, 429]
    # Two attempts went to Twilio's 429s; none to waiting out the throttle they set.
    assert _retries_left(redis, recording.sid) == settings.retry_max - 2
    outcomes = [json.loads(e)["outcome"] for e in redis.lrange(f"rr:timeline:voice:{recording.sid}", 0, -1) if b'"kind":"job"' in e]
    assert outcomes.count("done") == 1


@pytest.mark.timeout(120)
def test_a_throttled_account_defers_the_job_without_spending_a_retry_or_calling_twilio(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings()
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID)
    worker = subprocess.Popen([sys.executable, "-m", "workers.commands.cli", "worker"], env=_worker_env(settings, standin),
                              cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        # The worker is up and waiting before the hold starts, so however slow this machine is
        # its first run meets the hold: a dequeue answers a push at once, far within 8 s.
        wait_for(lambda: Worker.all(connection=redis), timeout=60, what="the worker to register")
        AccountThrottle(redis).hold(ACCOUNT_SID, 8.0)
        lapses_at = time.time() + 8.0
        receiver.post(receiver.url(), callback(recording))
        wait_for(lambda: Catalog(redis).get("voice", recording.sid).get("archived_at"), timeout=60, what="the archive")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    first_call = min(r["time"] for r in standin.state.requests())
    assert first_call >= lapses_at - 0.1  # the hold is in Redis milliseconds; our clock read came just after it
    assert _retries_left(redis, recording.sid) == settings.retry_max
    outcomes = [json.loads(e)["outcome"] for e in redis.lrange(f"rr:timeline:voice:{recording.sid}", 0, -1) if b'"kind":"job"' in e]
    assert "deferred" in outcomes and outcomes.count("done") == 1


def test_a_worker_sweeps_orphaned_temp_files_when_it_starts(pipeline_settings: Callable[..., Settings]) -> None:
    settings = pipeline_settings(job_timeout_seconds=600)
    folder = settings.storage_path / "video" / ACCOUNT_SID
    folder.mkdir(parents=True)
    orphan, live = folder / ".RT1.mka.x1.part", folder / ".RT2.mka.x2.part"
    for path in (orphan, live):
        path.write_bytes(b"half")
    # Untouched for longer than any job may run: nothing can still be writing it.
    long_ago = time.time() - 601
    os.utime(orphan, (long_ago, long_ago))
    drain(settings)
    assert sorted(p.name for p in folder.iterdir()) == [live.name]
