"""STORAGE_URL=s3://…: each source archived into a real S3-compatible server on loopback (moto's),
create-only and verified; a worker killed mid-upload, two runs racing, wrong credentials, a missing bucket."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from redis import Redis
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.serializers import JSONSerializer

from receiver.kernel.events import RecordingEvent, Source, Status
from tests.conftest import ACCOUNT_SID, Receiver, drain
from tests.e2e.test_sources_pipeline import legacy_callback, media_callback, video_callback
from tests.e2e.test_voice_pipeline import callback as voice_callback
from tests.faults.test_faults_worker import ROOT, _worker_env
from tests.support.rq_jobs import failure_trace
from tests.support.s3_server import CREDENTIALS, Bucket, Gate, bucket, s3_server, worker_env
from tests.support.servers import wait_for
from workers.commands.settings import Settings
from workers.failures import TransientError
from workers.jobs import reactions
from workers.jobs.catalog import Catalog
from workers.jobs.context import WorkerContext
from workers.storage import open_store
from workers.storage.s3 import PART_BYTES
from workers.storage.seam import AlreadyStored

__all__ = ["bucket", "s3_server"]  # fixtures, used by name

# Each source, its callback, its media's extension and a media size: voice's takes three parts.
SOURCES: dict[str, tuple[Callable[[Any], Any], Callable[..., dict[str, str]], str, int | None]] = {
    "voice": (lambda s: s.add_voice(account_sid=ACCOUNT_SID), voice_callback, "wav", 2 * PART_BYTES + 12345),
    "video": (lambda s: s.add_video(account_sid=ACCOUNT_SID), video_callback, "mka", None),
    "media": (lambda s: s.add_media(account_sid=ACCOUNT_SID), media_callback, "mp4", None),
    "legacy": (lambda s: s.add_legacy(account_sid=ACCOUNT_SID), legacy_callback, "wav", None),
}


@pytest.fixture
def s3_settings(pipeline_settings: Callable[..., Settings], bucket: Bucket) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = dict(storage_url=bucket.url, storage_endpoint_url=bucket.server.endpoint)
        values.update(overrides)
        return pipeline_settings(**values)

    return make


def _keys(bucket: Bucket, source: str, sid: str, ext: str) -> tuple[str, str]:
    folder = f"{bucket.prefix}/{source}/{ACCOUNT_SID}"
    return f"{folder}/{sid}.{ext}", f"{folder}/{sid}.json"


def _served(standin: Any, rec: Any, ext: str) -> bytes:
    """The bytes the stand-in serves (a large body is made as it is sent, from other blocks)."""
    body = standin.state.media_body(rec, ext)
    return body if isinstance(body, bytes) else b"".join(body[0])


def _failed_reason(redis: Redis, job_id: str) -> str:
    """The reason of a job that failed for good at its first attempt (no retry)."""
    job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    assert job.id in FailedJobRegistry("recordings", connection=redis, serializer=JSONSerializer).get_job_ids()
    sid = job_id.split("-")[2]
    timeline = [json.loads(e) for e in redis.lrange(f"rr:timeline:voice:{sid}", 0, -1)]
    assert [e["outcome"] for e in timeline if e.get("kind") == "job"] == ["failed (permanent)"]
    last = failure_trace(job).strip().splitlines()[-1]
    assert "permanent: " in last
    return last


@pytest.mark.parametrize("source", list(SOURCES))
def test_each_source_is_archived_into_s3_with_the_sha256_of_what_twilio_served(
    source: str, s3_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    standin: Any, bucket: Bucket, redis: Redis,
) -> None:
    add, make_callback, ext, size = SOURCES[source]
    settings = s3_settings()
    receiver = start_receiver(settings)
    if size is not None:
        standin.state.media_size = size
    rec = add(standin.state)
    assert receiver.post(receiver.url(source), make_callback(rec)).status_code == 204
    drain(settings)

    media_key, record_key = _keys(bucket, source, rec.sid, ext)
    objects = bucket.objects()
    assert sorted(objects) == sorted([media_key, record_key])
    served = _served(standin, rec, ext)
    assert objects[media_key] == served
    record = json.loads(objects[record_key])
    assert record["media"] == {"file": f"{rec.sid}.{ext}", "bytes": len(served),
                               "sha256": hashlib.sha256(served).hexdigest(), "format": ext}
    assert record["recording"]["sid"] == rec.sid
    state = Catalog(redis).get(source, rec.sid)
    assert state["media_path"] == f"s3://{bucket.name}/{media_key}" and state["media_sha256"] == record["media"]["sha256"]
    assert bucket.unfinished_uploads() == [] and not settings.storage_path.exists()


@pytest.mark.parametrize("size", [1000, PART_BYTES + 1], ids=["one-put", "multipart"])
def test_an_object_in_place_is_never_replaced_and_no_upload_is_left_behind(bucket: Bucket, size: int) -> None:
    store = open_store(Settings(storage_url=bucket.url, storage_endpoint_url=bucket.server.endpoint))
    key = f"voice/{ACCOUNT_SID}/RE{'1' * 32}.wav"
    first = store.put_media(key, iter([b"a" * size]))
    with pytest.raises(AlreadyStored) as taken:
        store.put_media(key, iter([b"b" * size]))
    assert taken.value.ours is not None and taken.value.ours.size == size
    assert store.digest(key) == first
    assert bucket.versions() == {f"{bucket.prefix}/{key}": 1} and bucket.unfinished_uploads() == []
    store.close()


def test_a_failing_media_stream_abandons_the_upload_and_leaves_nothing(bucket: Bucket) -> None:
    store = open_store(Settings(storage_url=bucket.url, storage_endpoint_url=bucket.server.endpoint))

    def cut_short() -> Any:
        yield b"x" * (PART_BYTES + 10)  # one part already uploaded when the stream fails
        raise OSError("connection reset")

    with pytest.raises(OSError):
        store.put_media(f"voice/{ACCOUNT_SID}/RE{'2' * 32}.wav", cut_short())
    assert bucket.objects() == {} and bucket.unfinished_uploads() == []
    store.close()


def test_an_object_that_reads_back_wrong_is_removed_and_the_write_retried(bucket: Bucket) -> None:
    """The check is ours, not the server's: a store that returns other bytes than it was sent."""
    store = open_store(Settings(storage_url=bucket.url, storage_endpoint_url=bucket.server.endpoint))
    key = f"voice/{ACCOUNT_SID}/RE{'3' * 32}.wav"
    bucket.server.gate = Gate(corrupts=lambda env: env["REQUEST_METHOD"] == "GET" and env["PATH_INFO"].endswith(".wav"))
    with pytest.raises(TransientError, match="read back from storage differently from what was sent; removed"):
        store.put_media(key, iter([b"sent bytes"]))
    bucket.server.gate = Gate()
    assert bucket.objects() == {}
    assert store.put_media(key, iter([b"sent bytes"])).size == 10 and bucket.objects() == {f"{bucket.prefix}/{key}": b"sent bytes"}
    store.close()


def test_an_unreachable_store_is_retried_not_failed_for_good(
    s3_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis,
) -> None:
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = s3_settings(storage_endpoint_url=f"http://127.0.0.1:{port}", retry_base_seconds=60)
    receiver = start_receiver(settings)
    rec = standin.state.add_voice(account_sid=ACCOUNT_SID)
    receiver.post(receiver.url(), voice_callback(rec))
    drain(settings)
    job_id = f"rr-voice-{rec.sid}-completed"
    assert ScheduledJobRegistry("recordings", connection=redis, serializer=JSONSerializer).get_job_ids() == [job_id]
    timeline = [json.loads(e) for e in redis.lrange(f"rr:timeline:voice:{rec.sid}", 0, -1)]
    assert [(e["outcome"], e.get("error")) for e in timeline if e.get("kind") == "job"] == [
        ("failed (transient)", "storage unreachable: EndpointConnectionError")]


def test_two_runs_racing_on_one_recording_leave_one_object_each_never_replaced(
    s3_settings: Callable[..., Settings], standin: Any, bucket: Bucket, redis: Redis
) -> None:
    """As two workers whose claims both lapsed: the create-only writes decide, and the loser
    checks the winner's objects and takes them as the archive."""
    settings = s3_settings()
    standin.state.media_size = PART_BYTES + 4096
    rec = standin.state.add_voice(account_sid=ACCOUNT_SID)
    event = RecordingEvent(Source.VOICE, rec.sid, Status.COMPLETED, ACCOUNT_SID)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def run() -> None:
        ctx = WorkerContext(settings)
        try:
            start.wait(10)
            outcomes.append(reactions._archive(ctx, event)["archived"])
        finally:
            ctx.close()

    runs = [threading.Thread(target=run) for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join(120)
    assert sorted(outcomes) == ["now", "recovered"]
    media_key, record_key = _keys(bucket, "voice", rec.sid, "wav")
    assert bucket.versions() == {media_key: 1, record_key: 1}
    assert bucket.objects()[media_key] == _served(standin, rec, "wav")


@pytest.mark.timeout(300)
def test_a_worker_killed_mid_upload_leaves_no_object_and_the_retry_archives_exactly_once(
    s3_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    standin: Any, bucket: Bucket, redis: Redis, tmp_path: Any,
) -> None:
    settings = s3_settings()
    receiver = start_receiver(settings)
    standin.state.media_size = 2 * PART_BYTES + 1
    rec = standin.state.add_voice(account_sid=ACCOUNT_SID)
    # Every part is sent; the completion (POST ?uploadId=…) is held until the worker is dead.
    held = Gate(matches=lambda env: env["REQUEST_METHOD"] == "POST" and "uploadId=" in env.get("QUERY_STRING", ""))
    bucket.server.gate = held
    assert receiver.post(receiver.url(), voice_callback(rec)).status_code == 204
    env = worker_env(_worker_env(settings, standin), bucket, tmp_path)
    cmd = [sys.executable, "-m", "workers.commands.cli", "worker"]
    first = subprocess.Popen([*cmd, "--no-scheduler"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        wait_for(held.reached.is_set, timeout=120, what="the upload's completion to reach the server")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        first.kill()
    media_key, record_key = _keys(bucket, "voice", rec.sid, "wav")
    assert bucket.objects() == {} and bucket.unfinished_uploads() == [media_key]
    bucket.server.gate = Gate()
    held.opened.set()

    log = tmp_path / "second-worker.log"
    with log.open("w") as log_file:
        second = subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=log_file)
    try:
        wait_for(lambda: Catalog(redis).get("voice", rec.sid).get("archived_at"), timeout=150,
                 what=f"the retry to archive (worker log: {log})")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert bucket.versions() == {media_key: 1, record_key: 1}
    assert bucket.objects()[media_key] == _served(standin, rec, "wav")
    done = [e for e in redis.lrange(f"rr:timeline:voice:{rec.sid}", 0, -1) if b'"outcome":"done"' in e]
    assert len(done) == 1


def _check(settings: Settings, standin: Any, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.commands.cli", "check"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def _storage_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("storage "))


def test_check_writes_and_deletes_a_probe_object(
    s3_settings: Callable[..., Settings], standin: Any, bucket: Bucket, tmp_path: Any
) -> None:
    settings = s3_settings()
    done = _check(settings, standin, worker_env(_worker_env(settings, standin), bucket, tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert _storage_line(done.stdout) == (
        f"storage    {bucket.url} reachable and writable at {bucket.server.endpoint}"
    )
    assert bucket.objects() == {}
    assert [key.rpartition("/")[0] for key in bucket.versions()] == [f"{bucket.prefix}/.probe"]


def test_wrong_credentials_are_one_line_in_check_and_a_permanent_job_failure(
    s3_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    standin: Any, bucket: Bucket, redis: Redis, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = s3_settings()
    receiver = start_receiver(settings)
    rec = standin.state.add_voice(account_sid=ACCOUNT_SID)
    wrong = {"AWS_ACCESS_KEY_ID": "AKIAWRONGWRONGWRONG1", "AWS_SECRET_ACCESS_KEY": "wrong-secret-never-shown"}
    bucket.server.require_auth(True)
    done = _check(settings, standin, {**worker_env(_worker_env(settings, standin), bucket, tmp_path), **wrong})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert _storage_line(done.stdout) == (
        "storage    storage does not know the access key: check AWS_ACCESS_KEY_ID or the AWS profile"
    )
    assert "wrong-secret-never-shown" not in done.stdout + done.stderr
    for name, value in wrong.items():
        monkeypatch.setenv(name, value)
    receiver.post(receiver.url(), voice_callback(rec))
    drain(settings)
    reason = _failed_reason(redis, f"rr-voice-{rec.sid}-completed")
    assert reason.endswith("storage does not know the access key: check AWS_ACCESS_KEY_ID or the AWS profile")


def test_a_missing_bucket_is_one_line_in_check_and_a_permanent_job_failure(
    s3_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    standin: Any, bucket: Bucket, redis: Redis, tmp_path: Any,
) -> None:
    missing = f"{bucket.name}-missing"
    settings = s3_settings(storage_url=f"s3://{missing}/archive")
    receiver = start_receiver(settings)
    rec = standin.state.add_voice(account_sid=ACCOUNT_SID)
    env = {**worker_env(_worker_env(settings, standin), bucket, tmp_path), "STORAGE_URL": settings.storage_url or ""}
    done = _check(settings, standin, env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert _storage_line(done.stdout) == f"storage    bucket {missing} does not exist"
    receiver.post(receiver.url(), voice_callback(rec))
    drain(settings)
    assert _failed_reason(redis, f"rr-voice-{rec.sid}-completed").endswith(f"bucket {missing} does not exist")


def test_a_denied_write_is_one_line_in_check_and_a_permanent_job_failure(
    s3_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    standin: Any, bucket: Bucket, redis: Redis, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Credentials that may read the bucket but not write to it (an IAM policy without s3:PutObject)."""
    settings = s3_settings()
    receiver = start_receiver(settings)
    rec = standin.state.add_voice(account_sid=ACCOUNT_SID)
    iam = boto3.session.Session(
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"], aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    ).client("iam", endpoint_url=bucket.server.endpoint)
    iam.create_user(UserName="reader")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                                                      "Resource": [f"arn:aws:s3:::{bucket.name}", f"arn:aws:s3:::{bucket.name}/*"]}]}
    iam.put_user_policy(UserName="reader", PolicyName="read-only", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    reader = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    bucket.server.require_auth(True)
    done = _check(settings, standin, {**worker_env(_worker_env(settings, standin), bucket, tmp_path), **reader})
    denied = f"storage denied PutObject on s3://{bucket.name}: the credentials lack the permission (see README, Storage)"
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert _storage_line(done.stdout) == f"storage    {denied}"
    for name, value in reader.items():
        monkeypatch.setenv(name, value)
    receiver.post(receiver.url(), voice_callback(rec))
    drain(settings)
    assert _failed_reason(redis, f"rr-voice-{rec.sid}-completed").endswith(denied)
    bucket.server.require_auth(False)
    assert bucket.objects() == {}


def test_a_storage_url_carrying_credentials_is_refused_without_repeating_it() -> None:
    with pytest.raises(ValueError) as refused:
        Settings(storage_url="s3://AKIAEXAMPLE:topsecret@bucket/prefix")
    assert "topsecret" not in str(refused.value) and "must not carry credentials" in str(refused.value)
    with pytest.raises(ValueError, match="must be a path, file:///path or s3://bucket/prefix"):
        Settings(storage_url="gs://bucket")
