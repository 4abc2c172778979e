"""`recording-receiver up` as a user runs it: one command, a real Redis, answers within 10 s, Ctrl-C stops all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from redis import Redis

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.servers import answers_200, free_port, wait_for
from workers import simulate

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_up_serves_within_10s_processes_a_callback_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PUBLIC_BASE_URL")}
    env.update(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, LOG_FORMAT="json",
               ADMIN_PORT=str(free_port()))
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "up", "--data-dir", str(tmp_path / "data"), "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        wait_for(lambda: answers_200(f"http://127.0.0.1:{port}/healthz"), timeout=10, what="/healthz")
        assert time.monotonic() - started < 10
        assert proc.stdout is not None
        banner = "".join(proc.stdout.readline() for _ in range(10))
        assert f"http://127.0.0.1:{port}/twilio/recordings/voice" in banner
        redis_url = re.search(r"redis://\S+", banner)
        assert redis_url, banner
        url = f"http://127.0.0.1:{port}/twilio/recordings/voice"
        params = simulate.voice_params(ACCOUNT_SID, "absent")
        assert simulate.send(url, params, AUTH_TOKEN).status_code == 204
        redis = Redis.from_url(redis_url.group(0))
        key = f"rr:rec:voice:{params['RecordingSid']}"
        wait_for(lambda: redis.hget(key, "status") == b"absent", timeout=15, what="a worker to record the event")
        assert (tmp_path / "data" / "redis" / "appendonlydir").exists() or (tmp_path / "data" / "redis" / "appendonly.aof").exists()
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 5  # redis, receiver, two workers, console
        console = re.search(r"console    (http://\S+)", banner)
        assert console, banner
        login = re.search(r"login      admin / (\S+)", banner)
        assert login, banner
        wait_for(lambda: answers_200(console.group(1) + "healthz"), timeout=10, what="the console")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=40)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
