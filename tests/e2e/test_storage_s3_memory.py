"""Archiving a 500 MB recording to S3 streams it: the worker's RSS grows by less than 20 MB.

The pattern of test_streaming_memory.py with STORAGE_URL=s3://… against moto's server on loopback:
one part (8 MiB) is the most the worker buffers, and the read-back check streams too.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.e2e.test_streaming_memory import GROWTH_LIMIT, MEDIA_BYTES, ROOT, PeakRss, _archive
from tests.support.s3_server import Bucket, bucket, s3_server, worker_env
from tests.support.servers import RedisProcess
from workers.commands.settings import Settings

__all__ = ["bucket", "s3_server"]  # fixtures, used by name


@pytest.fixture
def s3_worker(own_redis: RedisProcess, standin: Any, bucket: Bucket, tmp_path: Path) -> Iterator[tuple[psutil.Popen, Settings]]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_SENTINELS", "STORAGE_DIR")}
    env.update(REDIS_URL=own_redis.url, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
               TWILIO_API_BASE_URL=standin.base_url, DATA_DIR=str(tmp_path), LOG_FORMAT="json",
               RECONCILE_INTERVAL_SECONDS="0")
    settings = Settings(redis_url=own_redis.url, data_dir=tmp_path, storage_url=bucket.url,
                        storage_endpoint_url=bucket.server.endpoint)
    log = (tmp_path / "worker.log").open("wb")
    proc = psutil.Popen([sys.executable, "-m", "workers.commands.cli", "worker", "--no-scheduler", "--concurrency", "1"],
                        env=worker_env(env, bucket, tmp_path), cwd=ROOT, stdout=log, stderr=log)
    log.close()
    try:
        yield proc, settings
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.timeout(600)
def test_a_500_mb_recording_archived_to_s3_grows_the_worker_by_less_than_20_mb(
    s3_worker: tuple[psutil.Popen, Settings], standin: Any, own_redis: RedisProcess, bucket: Bucket
) -> None:
    proc, settings = s3_worker
    redis = own_redis.client()
    # A small recording first, then one big enough for multipart: what the first jobs load once
    # (modules, pools, boto3's client) is not the recording's size, and the promise is about size.
    standin.state.media_size = 20 * 2**20
    _archive(settings, standin.state.add_voice(account_sid=ACCOUNT_SID).sid, redis, proc)
    baseline = proc.memory_info().rss
    standin.state.media_size = MEDIA_BYTES
    large = standin.state.add_voice(account_sid=ACCOUNT_SID)
    with PeakRss(proc.pid) as rss:
        _archive(settings, large.sid, redis, proc)
    head = bucket.client().head_object(Bucket=bucket.name, Key=f"{bucket.prefix}/voice/{ACCOUNT_SID}/{large.sid}.wav")
    assert head["ContentLength"] == MEDIA_BYTES
    growth = rss.peak - baseline
    print(f"worker RSS grew {growth / 2**20:.1f} MB archiving {MEDIA_BYTES / 10**6:.0f} MB to S3")
    assert growth < GROWTH_LIMIT, f"RSS grew {growth / 2**20:.1f} MB while archiving {MEDIA_BYTES / 10**6:.0f} MB"
