"""The workers page groups thread-workers under their process and host, and shows each one's running job."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from tests.conftest import ACCOUNT_SID
from tests.support.console.helpers import sid, sign_in
from tests.support.paths import REPO_ROOT
from tests.support.servers import wait_for
from workers.commands.settings import Settings

ROOT = REPO_ROOT
RECORDING = sid("RE", 7)
JOB_ID = f"rr-voice-{RECORDING}-completed"


@pytest.fixture
def start_worker(redis_url: str) -> Iterator[Callable[[int], subprocess.Popen[bytes]]]:
    """A real worker process with `threads` threads, also allowed the stand-in job `time.sleep`."""
    started: list[subprocess.Popen[bytes]] = []

    def start(threads: int) -> subprocess.Popen[bytes]:
        env = dict(os.environ, REDIS_URL=redis_url, TWILIO_ACCOUNT_SID=ACCOUNT_SID, LOG_FORMAT="json",
                   WORKER_THREADS=str(threads))
        proc = subprocess.Popen([sys.executable, "-m", "tests.support.lifecycle_worker", "worker", "--no-scheduler"], env=env,
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()  # the running job sleeps for minutes: a warm shutdown would wait for it
        proc.wait(timeout=30)


def _process_tables(page: str) -> dict[str, str]:
    """pid -> that process's table on the page."""
    found = re.findall(r'<table class="process" data-pid="(\d+)">(.*?)</table>', page, re.DOTALL)
    return dict(found)


def _row(table: str, worker: str) -> str:
    match = re.search(rf'<tr data-worker="{re.escape(worker)}">(.*?)</tr>', table, re.DOTALL)
    assert match, f"{worker} is not listed in its process's table"
    return match.group(1)


def test_workers_page_groups_threads_by_process_and_shows_the_running_job(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
    start_worker: Callable[[int], subprocess.Popen[bytes]],
) -> None:
    threads = {proc.pid: n for proc, n in ((start_worker(3), 3), (start_worker(2), 2))}
    client = sign_in(start_console(console_settings()))

    def all_registered() -> dict[str, Any]:
        body: dict[str, Any] = client.get("/api/workers").json()
        return body if len(body["workers"]) == sum(threads.values()) else {}

    wait_for(all_registered, timeout=30, what="both processes' threads to register")
    job = Queue("recordings", connection=redis, serializer=JSONSerializer).enqueue("time.sleep", 600, job_id=JOB_ID)
    wait_for(lambda: job.get_status(refresh=True) == JobStatus.STARTED, timeout=30, what="a worker to start the job")
    runner = Job.fetch(JOB_ID, connection=redis, serializer=JSONSerializer).worker_name
    assert runner, "RQ did not record which worker runs the job"

    page = client.get("/workers").text
    assert "5 alive in 2 processes" in page
    tables = _process_tables(page)
    assert {int(pid) for pid in tables} == set(threads)
    for pid, n in threads.items():
        assert f"Process {pid}: {n} threads, " in tables[str(pid)]
        assert len(re.findall(r"<tr data-worker=", tables[str(pid)])) == n
    [(runner_pid, runner_table)] = [(pid, t) for pid, t in tables.items() if f'data-worker="{runner}"' in t]
    assert html.unescape(runner).split(".")[-2] == runner_pid  # host.pid.slot: listed under its own process
    row = _row(runner_table, runner)
    assert JOB_ID in row and f'href="/recordings/voice/{RECORDING}"' in row and "busy" in row
    assert re.search(r"<td>\d+(\.\d)? (ms|s)</td>", row), f"no running time in {row}"
    # Only the worker running it shows the job.
    assert page.count(JOB_ID) == 1

    body = client.get("/api/workers").json()
    assert sorted((p["pid"], p["threads"], p["busy"]) for p in body["processes"]) == sorted(
        (pid, n, 1 if str(pid) == runner_pid else 0) for pid, n in threads.items())
    [busy] = [w for w in body["workers"] if w["job"]]
    assert busy["name"] == runner and busy["job"]["recording_sid"] == RECORDING and busy["job"]["source"] == "voice"
    assert busy["job"]["running_seconds"] is not None and busy["job"]["running_seconds"] >= 0
