"""The README's rq-dashboard command, run as written beside a real worker: it reads our JSON jobs and lists our workers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from tests.conftest import ACCOUNT_SID
from tests.support import readme
from tests.support.console.helpers import sid
from tests.support.paths import REPO_ROOT
from tests.support.servers import answers_200, free_port, wait_for

ROOT = REPO_ROOT
VENV_BIN = Path(sys.executable).parent
THREADS = 2
JOB_ID = f"rr-voice-{sid('RE', 9)}-completed"


def _dashboard_command(redis_url: str, port: int) -> list[str]:
    [shown] = [c for _, c in readme.shell_commands() if c.startswith(".venv/bin/rq-dashboard ")]
    words = shown.replace('"$REDIS_URL"', redis_url).split()
    words[words.index("--port") + 1] = str(port)
    return [str(VENV_BIN / "rq-dashboard"), *words[1:]]


@pytest.fixture
def worker(redis_url: str) -> Iterator[subprocess.Popen[bytes]]:
    env = dict(os.environ, REDIS_URL=redis_url, TWILIO_ACCOUNT_SID=ACCOUNT_SID, LOG_FORMAT="json", WORKER_THREADS=str(THREADS))
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.lifecycle_worker", "worker", "--no-scheduler"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield proc
    proc.kill()  # its job sleeps for minutes: a warm shutdown would wait for it
    proc.wait(timeout=30)


def _workers(base: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = httpx.get(base + "/data/workers.json", timeout=10).json()["workers"]
    return found


def test_rq_dashboard_as_the_readme_runs_it_reads_our_jobs_and_workers(
    redis_url: str, redis: Redis, worker: subprocess.Popen[bytes],
) -> None:
    host = socket.gethostname()
    names = [f"{host}.{worker.pid}.{slot}" for slot in range(THREADS)]
    port = free_port()
    dashboard = subprocess.Popen(_dashboard_command(redis_url, port), cwd=ROOT, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/0"
        wait_for(lambda: dashboard.poll() is not None or answers_200(base + "/data/queues.json"), timeout=60,
                 what="rq-dashboard to answer")
        assert dashboard.poll() is None, "rq-dashboard exited"
        # Our workers, idle, under the names the README gives.
        wait_for(lambda: sorted(w["name"] for w in _workers(base)) == names, timeout=30, what="our workers in rq-dashboard")

        job = Queue("recordings", connection=redis, serializer=JSONSerializer).enqueue("time.sleep", 600, job_id=JOB_ID)
        wait_for(lambda: job.get_status(refresh=True) == JobStatus.STARTED, timeout=30, what="the worker to start the job")
        queues = httpx.get(base + "/data/queues.json", timeout=10).json()["queues"]
        assert "recordings" in [q["name"] for q in queues]
        # The job's JSON payload loads (-j: without it, this answers 500).
        shown = httpx.get(f"{base}/data/job/{JOB_ID}.json", timeout=10).json()
        assert shown["id"] == JOB_ID and shown["status"] == "started" and "time.sleep(600)" in shown["description"], shown
        # The README's caveat: 0.9 loads a busy worker's job without the JSON serializer, so its
        # Workers tab fails while a job runs. When this passes, the README's sentence must go.
        assert httpx.get(base + "/data/workers.json", timeout=10).status_code == 500
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)


def _rq_enqueue(redis_url: str, job_id: str, *options: str) -> None:
    done = subprocess.run([str(VENV_BIN / "rq"), "enqueue", "-u", redis_url, "--queue", "recordings", "--job-id", job_id,
                           *options, "time.sleep", ":0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def test_rq_enqueue_needs_the_serializer_the_readme_names(
    redis_url: str, redis: Redis, worker: subprocess.Popen[bytes],
) -> None:
    [option] = [c for c in readme.inline_code() if c.startswith("--serializer ")]
    _rq_enqueue(redis_url, "told", *option.split())
    _rq_enqueue(redis_url, "untold")

    def status(job_id: str) -> JobStatus:
        return Job.fetch(job_id, connection=redis, serializer=JSONSerializer).get_status(refresh=True)

    done = {JobStatus.FINISHED, JobStatus.FAILED}
    wait_for(lambda: status("told") in done and status("untold") in done, timeout=30, what="our worker to take both jobs")
    # Our workers read JSON only: the job rq wrote with its default (pickle) serializer fails.
    assert (status("told"), status("untold")) == (JobStatus.FINISHED, JobStatus.FAILED)


@pytest.mark.parametrize("told", [True, False], ids=["with-serializer", "without"])
def test_rq_worker_needs_the_serializer_the_readme_names(redis_url: str, redis: Redis, told: bool) -> None:
    [option] = [c for c in readme.inline_code() if c.startswith("--serializer ")]
    job = Queue("recordings", connection=redis, serializer=JSONSerializer).enqueue("time.sleep", 0, job_id=JOB_ID)
    command = [str(VENV_BIN / "rq"), "worker", "--burst", "-u", redis_url, *(option.split() if told else []), "recordings"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert job.get_status(refresh=True) == (JobStatus.FINISHED if told else JobStatus.FAILED)
