"""`export` end to end: a backlog across the four sources, stopped with Ctrl-C, resumed, each recording archived once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from receiver.kernel import keys
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.support.paths import REPO_ROOT
from tests.support.servers import wait_for

PER_SOURCE = 50
SOURCES = ("voice", "video", "media", "legacy")
OLDEST = datetime(2024, 1, 1, tzinfo=UTC)
# Below one source's worth, so the export waits for room after its first batch.
MAX_IN_FLIGHT = 20


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _env(redis_url: str, standin: Any, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_SENTINELS", "STORAGE_DIR", "SPOOL_DIR", "TWILIO_ACCOUNTS")}
    env.update(
        REDIS_URL=redis_url, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_API_BASE_URL=standin.base_url,
        TWILIO_VIDEO_BASE_URL=standin.base_url, TWILIO_MEDIA_BASE_URL=standin.base_url, DATA_DIR=str(tmp_path / "data"),
        STORAGE_DIR=str(tmp_path / "storage"), LOG_FORMAT="json", RETRY_BASE_SECONDS="0", TWILIO_TIMEOUT_SECONDS="5",
        RECONCILE_INTERVAL_SECONDS="0", EXPORT_MAX_IN_FLIGHT=str(MAX_IN_FLIGHT),
    )
    return env


def _start(args: list[str], env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    with out.open("wb") as log:
        return subprocess.Popen([sys.executable, "-m", "workers.commands.cli", *args], env=env, cwd=REPO_ROOT, stdout=log,
                                stderr=subprocess.STDOUT)


def _run_fields(redis: Redis) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in redis.hgetall(keys.EXPORT_RUN).items()}  # type: ignore[union-attr]


def _job_outcomes(redis: Redis, source: str, sid: str) -> list[str]:
    entries = [json.loads(raw) for raw in redis.lrange(keys.timeline_key(source, sid), 0, -1)]  # type: ignore[union-attr]
    return [str(e.get("outcome")) for e in entries if e.get("kind") == "job"]


def test_export_stopped_with_ctrl_c_resumes_and_archives_every_recording_once(
    standin: Any, redis: Redis, redis_url: str, tmp_path: Path, children: list[subprocess.Popen[bytes]]
) -> None:
    seeded = {
        source: [r.sid for r in standin.state.add_many(source, PER_SOURCE, OLDEST, timedelta(minutes=7))]
        for source in SOURCES
    }
    newer = standin.state.add_voice(date_created=datetime(2025, 6, 1, tzinfo=UTC))  # outside the window: left alone
    env = _env(redis_url, standin, tmp_path)
    window = ["export", "--since", "2024-01-01", "--until", "2024-12-31"]

    # No worker yet: the export queues a first batch, then waits for room (back-pressure) and is stopped there.
    first = _start(window, env, tmp_path / "first.out")
    children.append(first)
    wait_for(lambda: int(_run_fields(redis).get("queued") or 0) > 0, timeout=60, what="the export to queue its first batch")
    assert redis.llen("rq:queue:recordings") <= max(MAX_IN_FLIGHT, PER_SOURCE)
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=30) == 130, (tmp_path / "first.out").read_text()
    stopped = (tmp_path / "first.out").read_text()
    assert "export stopped" in stopped and "run the same command again to resume" in stopped
    assert _run_fields(redis)["state"] == "stopped"
    queued_before = int(_run_fields(redis)["queued"])
    assert 0 < queued_before < 4 * PER_SOURCE

    worker = _start(["worker", "--concurrency", "4"], env, tmp_path / "worker.out")
    children.append(worker)
    second = _start(window, env, tmp_path / "second.out")
    children.append(second)
    assert second.wait(timeout=180) == 0, (tmp_path / "second.out").read_text()
    report = (tmp_path / "second.out").read_text()
    assert "export finished (resumed)" in report

    run = _run_fields(redis)
    assert run["state"] == "finished"
    assert int(run["queued"]) == 4 * PER_SOURCE  # the resumed run did not queue again what the first had queued
    assert int(run["archived"]) == 4 * PER_SOURCE and run["failed"] == "0"
    storage = tmp_path / "storage"
    for source, sids in seeded.items():
        for sid in sids:
            media = [p for p in (storage / source / ACCOUNT_SID).glob(f"{sid}.*") if p.suffix != ".json"]
            assert len(media) == 1, (source, sid)
            assert _job_outcomes(redis, source, sid) == ["done"], (source, sid)
    assert not redis.exists(keys.recording_key("voice", newer.sid))
