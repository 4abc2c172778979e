"""S3 storage on a bad day: 5xx and SlowDown answers, connections cut mid-upload and after the
write, the server restarting, a worker SIGKILLed: every recording archived once, none lost."""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from tests.conftest import ACCOUNT_SID, Receiver
from tests.e2e.test_voice_pipeline import callback
from tests.faults.test_faults_worker import ROOT, _worker_env
from tests.support.s3_faults import Faults, FaultyS3
from tests.support.s3_server import CREDENTIALS, isolate_aws, no_machine_aws
from tests.support.s3_server import client as s3_client
from tests.support.servers import wait_for, wait_for_count
from workers.commands.settings import Settings
from workers.failures import PermanentError, TransientError
from workers.jobs.catalog import Catalog
from workers.storage import open_store

PREFIX = "archive"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[FaultyS3, str]]:
    """A faulty S3 server of this test's own, a fresh versioned bucket on it, and this process's
    AWS settings pointed at the test keys only."""
    isolate_aws(monkeypatch, tmp_path, CREDENTIALS)
    with FaultyS3(seed=17) as server:
        bucket = f"chaos-{uuid.uuid4().hex[:12]}"
        server.make_bucket(bucket)
        yield server, bucket


def _cut(kind: str) -> Faults:
    return Faults(cut_mid_upload=1.0) if kind == "mid-upload" else Faults(cut_after_write=1.0)


@pytest.mark.parametrize("kind", ["mid-upload", "after-the-write"])
def test_a_connection_storage_cuts_is_a_failure_a_retry_fixes(s3: tuple[FaultyS3, str], kind: str) -> None:
    # botocore calls a connection closed before the answer ConnectionClosedError, which is no
    # botocore ConnectionError: it was taken for a permanent failure, and the recording was lost.
    server, bucket = s3
    store = open_store(Settings(storage_url=f"s3://{bucket}/{PREFIX}", storage_endpoint_url=server.endpoint))
    with contextlib.closing(store):
        server.faults = _cut(kind)
        with pytest.raises(TransientError, match="storage connection lost") as failed:
            store.put_media("voice/a.wav", iter([b"a" * 4096]))
        assert not isinstance(failed.value, PermanentError)
        server.faults = Faults()
        written = server.versions.get(f"/{bucket}/{PREFIX}/voice/a.wav", set())
        assert len(written) == (0 if kind == "mid-upload" else 1)


def _worker_s3_env(settings: Settings, standin: Any, server: FaultyS3, bucket: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in _worker_env(settings, standin, RETRY_BASE_SECONDS="1").items() if not k.startswith("AWS_")}
    env.update(STORAGE_URL=f"s3://{bucket}/{PREFIX}", STORAGE_ENDPOINT_URL=server.endpoint, **CREDENTIALS,
               **no_machine_aws(tmp))
    return env


def _met_the_outage(redis: Redis, sids: list[str]) -> bool:
    pipe = redis.pipeline(transaction=False)
    for sid in sids:
        pipe.lrange(f"rr:timeline:voice:{sid}", 0, -1)
    return any(b"storage unreachable" in entry for timeline in pipe.execute() for entry in timeline)


def _archived(redis: Redis, sids: list[str]) -> int:
    catalog = Catalog(redis)
    return sum(1 for sid in sids if catalog.get("voice", sid).get("archived_at"))


@pytest.mark.timeout(600)
def test_s3_faults_a_restart_and_a_worker_kill_lose_nothing_and_write_nothing_twice(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any,
    redis: Redis, s3: tuple[FaultyS3, str], tmp_path: Path,
) -> None:
    server, bucket = s3
    settings = pipeline_settings(storage_url=f"s3://{bucket}/{PREFIX}", storage_endpoint_url=server.endpoint)
    receiver = start_receiver(settings)
    standin.state.media_size = 4096
    recordings = [standin.state.add_voice(account_sid=ACCOUNT_SID) for _ in range(40)]
    sids = [r.sid for r in recordings]
    env = _worker_s3_env(settings, standin, server, bucket, tmp_path)
    cmd = [sys.executable, "-m", "workers.commands.cli", "worker"]
    logs = [(tmp_path / f"worker-{n}.log").open("w") for n in range(3)]
    # The scheduler's worker is never killed: a killed lock holder delays retries by RQ's 60 s lease.
    workers = [subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=logs[0]),
               subprocess.Popen([*cmd, "--no-scheduler"], env=env, cwd=ROOT, stderr=logs[1])]
    try:
        server.stop()  # down before the first job: every worker meets the outage
        for recording in recordings:
            assert receiver.post(receiver.url(), callback(recording)).status_code == 204
        wait_for(lambda: _met_the_outage(redis, sids), timeout=180, interval=0.2, what="a job to meet the S3 outage")
        server.faults = Faults(slow_down=0.05, internal=0.05, cut_mid_upload=0.05, cut_after_write=0.05)
        server.start()
        wait_for(lambda: _archived(redis, sids) >= 5, timeout=180, interval=0.2, what="archiving to resume")
        workers[1].send_signal(signal.SIGKILL)
        workers[1].wait(timeout=10)
        workers.append(subprocess.Popen([*cmd, "--no-scheduler"], env=env, cwd=ROOT, stderr=logs[2]))
        wait_for_count(lambda: _archived(redis, sids), len(sids), stall=120, what=f"archiving (worker logs in {tmp_path})")
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=30)
        for log in logs:
            log.close()
    server.faults = Faults()
    assert server.done["cut after the write"] + server.done["cut mid-upload"] > 0, server.done
    _assert_each_archived_once(server, bucket, standin, recordings)


def _assert_each_archived_once(server: FaultyS3, bucket: str, standin: Any, recordings: list[Any]) -> None:
    s3 = s3_client(server.endpoint)
    with contextlib.closing(s3):
        folder = f"{PREFIX}/voice/{ACCOUNT_SID}"
        lost = []
        for rec in recordings:
            served = hashlib.sha256(standin.state.media_bytes(rec, "wav")).hexdigest()
            media = s3.get_object(Bucket=bucket, Key=f"{folder}/{rec.sid}.wav")["Body"].read()
            record = json.loads(s3.get_object(Bucket=bucket, Key=f"{folder}/{rec.sid}.json")["Body"].read())
            if hashlib.sha256(media).hexdigest() != served or record["media"]["sha256"] != served:
                lost.append(rec.sid)
        versions = s3.list_object_versions(Bucket=bucket).get("Versions", [])
        unfinished = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert lost == []
    assert server.written_more_than_once() == []
    assert len(versions) == 2 * len(recordings)  # one version per object: none replaced
    assert unfinished == []
