"""Deleting at Twilio with S3 storage: the copy is re-verified by reading the object back, and an
object replaced in the bucket (same size, other bytes) is never deleted at Twilio."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis import Redis
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from receiver.kernel import keys
from tests.conftest import ACCOUNT_SID, Receiver, drain
from tests.e2e.test_voice_pipeline import callback as voice_callback
from tests.support.rq_jobs import failure_trace
from tests.support.s3_server import Bucket, bucket, s3_server
from workers.commands.settings import Settings
from workers.jobs import deletion_schedule
from workers.jobs.catalog import Catalog

__all__ = ["bucket", "s3_server"]  # fixtures, used by name


def _deletes(standin: Any, sid: str) -> list[int]:
    return [r["status"] for r in standin.state.requests("DELETE") if r["path"].endswith(f"/Recordings/{sid}.json")]


def test_with_s3_storage_a_verified_copy_is_deleted_at_twilio_and_a_replaced_one_is_not(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any,
    bucket: Bucket, redis: Redis,
) -> None:
    s3 = {"storage_url": bucket.url, "storage_endpoint_url": bucket.server.endpoint}
    on = pipeline_settings(**s3, delete_at_twilio="after-archive", delete_delay="0")
    receiver = start_receiver(on)
    good = standin.state.add_voice(account_sid=ACCOUNT_SID)
    assert receiver.post(receiver.url(), voice_callback(good)).status_code == 204
    drain(on)
    assert _deletes(standin, good.sid) == [204]
    assert Catalog(redis).get("voice", good.sid)["deleted_at_twilio"]

    off = pipeline_settings(**s3)
    replaced = standin.state.add_voice(account_sid=ACCOUNT_SID)
    assert receiver.post(receiver.url(), voice_callback(replaced)).status_code == 204  # archived by an "off" worker
    drain(off)
    key = f"{bucket.prefix}/voice/{ACCOUNT_SID}/{replaced.sid}.wav"
    client = bucket.client()
    body = client.get_object(Bucket=bucket.name, Key=key)["Body"].read()
    client.put_object(Bucket=bucket.name, Key=key, Body=bytes(len(body)))  # someone overwrote it in the bucket
    deletion_schedule.schedule(on, redis, "voice", ACCOUNT_SID, replaced.sid)
    drain(on)

    assert _deletes(standin, replaced.sid) == []
    job = Job.fetch(keys.deletion_job_id("voice", replaced.sid), connection=redis, serializer=JSONSerializer)
    assert job.id in FailedJobRegistry("recordings", connection=redis, serializer=JSONSerializer).get_job_ids()
    assert "does not match its archive record" in failure_trace(job)
