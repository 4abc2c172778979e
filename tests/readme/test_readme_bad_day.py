"""The README's "On a bad day" where other tests do not hold it: Redis restarts, refused connections, throttles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.serializers import JSONSerializer

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, Receiver, drain
from tests.e2e.test_voice_pipeline import callback
from tests.support import readme
from tests.support.rq_jobs import failure_trace
from tests.support.servers import RedisProcess, free_port, wait_for
from workers.commands.settings import Settings
from workers.commands.simulate import new_sid, voice_params
from workers.jobs.catalog import Catalog
from workers.jobs.throttle import AccountThrottle

ROOT = readme.ROOT




@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_running_worker_waits_out_a_redis_restart_and_reconnects(
    own_redis: RedisProcess, make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    tmp_path: Path,
) -> None:
    receiver = start_receiver(make_settings(redis_url=own_redis.url))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "TWILIO_", "LOG_", "WORKER_"))}
    env.update(REDIS_URL=own_redis.url, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, LOG_FORMAT="json",
               DATA_DIR=str(tmp_path / "data"), WORKER_THREADS="2", RECONCILE_INTERVAL_SECONDS="0")
    log = tmp_path / "worker.log"
    with log.open("wb") as err:
        worker = subprocess.Popen([sys.executable, "-m", "workers.commands.cli", "worker", "--no-scheduler"], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=err)
    try:
        def processed(sid: str) -> bool:
            assert worker.poll() is None, f"the worker exited with {worker.returncode}; see {log}"
            return Catalog(own_redis.client()).get("voice", sid).get("status") == "absent"

        before, after = new_sid("RE"), new_sid("RE")
        assert receiver.post(receiver.url(), voice_params(ACCOUNT_SID, "absent", before)).status_code == 204
        wait_for(lambda: processed(before), timeout=30, what="the first event")
        own_redis.stop()
        own_redis.start()
        # Accepted after the restart (possibly through the receiver's spool), then taken by the same process.
        assert receiver.post(receiver.url(), voice_params(ACCOUNT_SID, "absent", after)).status_code == 204
        wait_for(lambda: processed(after), timeout=90, interval=0.2, what=f"the worker to reconnect (log: {log})")
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def test_connection_errors_are_retried_and_then_the_job_stays_failed_with_its_cause(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], redis: Redis
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there: every call is refused
    settings = pipeline_settings(twilio_api_base_url=nobody, retry_max=2)
    receiver = start_receiver(settings)
    sid = new_sid("RE")
    assert receiver.post(receiver.url(), {**voice_params(ACCOUNT_SID, "completed", sid)}).status_code == 204
    drain(settings)
    job_id = f"rr-voice-{sid}-completed"
    assert FailedJobRegistry("recordings", connection=redis, serializer=JSONSerializer).get_job_ids() == [job_id]
    job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    assert job.retries_left == 0
    assert failure_trace(job).strip().splitlines()[-1].startswith("workers.failures.JobFailed: transient: network: ")
    attempts = [e for e in redis.lrange(f"rr:timeline:voice:{sid}", 0, -1) if b'"kind":"job"' in e]
    assert len(attempts) == 3  # the first try and RETRY_MAX retries


@pytest.mark.parametrize(("hold", "in_the_job"), [(1.0, True), (5.0, False)])
def test_a_throttle_under_2_s_is_waited_out_in_the_job_a_longer_one_by_running_again(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any,
    redis: Redis, hold: float, in_the_job: bool,
) -> None:
    settings = pipeline_settings()
    receiver = start_receiver(settings)
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID)
    AccountThrottle(redis).hold(ACCOUNT_SID, hold)
    assert receiver.post(receiver.url(), callback(recording)).status_code == 204
    drain(settings)  # a burst worker without RQ's scheduler: a job that defers is not run again here
    job = Job.fetch(f"rr-voice-{recording.sid}-completed", connection=redis, serializer=JSONSerializer)
    outcomes = [json.loads(e)["outcome"] for e in redis.lrange(f"rr:timeline:voice:{recording.sid}", 0, -1) if b'"kind":"job"' in e]
    scheduled = ScheduledJobRegistry("recordings", connection=redis, serializer=JSONSerializer).get_job_ids()
    if in_the_job:
        assert outcomes == ["done"] and scheduled == []
        assert Catalog(redis).get("voice", recording.sid).get("archived_at")
    else:
        assert outcomes == ["deferred"] and scheduled == [job.id] and standin.state.requests() == []
    assert job.retries_left == settings.retry_max  # waiting out our own throttle spends no retry
