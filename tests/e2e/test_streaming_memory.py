"""Archiving a 500 MB recording streams it: the worker's RSS grows by less than 20 MB.

A memory budget, not a timing budget: how much the worker holds does not depend on how fast the
machine is, so it belongs in the default suite (about 10 s, mostly writing 500 MB to disk).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import psutil
import pytest
from redis import Redis

from receiver.kernel.events import RecordingEvent, Source, Status
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.support.paths import REPO_ROOT
from tests.support.servers import RedisProcess, wait_for
from workers.commands.settings import Settings
from workers.jobs.context import WorkerContext

ROOT = REPO_ROOT
MEDIA_BYTES = 500 * 10**6
GROWTH_LIMIT = 20 * 2**20


class PeakRss:
    """Samples a process's RSS in a thread until stopped; `peak` is the largest seen."""

    def __init__(self, pid: int) -> None:
        self._proc = psutil.Process(pid)
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def worker(own_redis: RedisProcess, standin: Any, tmp_path: Path) -> Iterator[tuple[psutil.Popen, Settings]]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_SENTINELS", "STORAGE_DIR")}
    env.update(REDIS_URL=own_redis.url, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
               TWILIO_API_BASE_URL=standin.base_url, DATA_DIR=str(tmp_path), LOG_FORMAT="json",
               RECONCILE_INTERVAL_SECONDS="0")
    settings = Settings(redis_url=own_redis.url, data_dir=tmp_path)
    log = (tmp_path / "worker.log").open("wb")
    proc = psutil.Popen([sys.executable, "-m", "workers.commands.cli", "worker", "--no-scheduler", "--concurrency", "1"],
                        env=env, cwd=ROOT, stdout=log, stderr=log)
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


def _archive(settings: Settings, sid: str, redis: Redis, worker: psutil.Popen) -> None:
    WorkerContext(settings).enqueuer.submit(RecordingEvent(Source.VOICE, sid, Status.COMPLETED, ACCOUNT_SID))

    def archived() -> bool:
        assert worker.poll() is None, f"the worker exited with {worker.returncode}"
        return bool(redis.hexists(f"rr:rec:voice:{sid}", "archived_at"))

    wait_for(archived, timeout=120, interval=0.1, what=f"{sid} archived")


def test_a_500_mb_recording_grows_the_worker_by_less_than_20_mb(
    worker: tuple[psutil.Popen, Settings], standin: Any, own_redis: RedisProcess
) -> None:
    proc, settings = worker
    redis = own_redis.client()
    # A small recording first: what the first job loads once (modules, pools) is not the
    # recording's size, and the promise is about size.
    small = standin.state.add_voice(account_sid=ACCOUNT_SID)
    _archive(settings, small.sid, redis, proc)
    baseline = proc.memory_info().rss
    standin.state.media_size = MEDIA_BYTES
    large = standin.state.add_voice(account_sid=ACCOUNT_SID)
    with PeakRss(proc.pid) as rss:
        _archive(settings, large.sid, redis, proc)
    media = next(settings.storage_path.rglob(f"{large.sid}.wav"))
    assert media.stat().st_size == MEDIA_BYTES
    growth = rss.peak - baseline
    assert growth < GROWTH_LIMIT, f"RSS grew {growth / 2**20:.1f} MB while archiving {MEDIA_BYTES / 10**6:.0f} MB"
