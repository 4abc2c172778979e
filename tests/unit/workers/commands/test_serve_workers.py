"""`serve --workers N`: N receiver processes share one port, and each of them answers callbacks."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from redis import Redis

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.support.paths import REPO_ROOT
from tests.support.servers import RedisProcess, free_port, wait_for
from tests.support.twilio_signing import sign

ROOT = REPO_ROOT
PROCESSES = 2


@pytest.fixture
def serve(own_redis: RedisProcess, tmp_path: Path) -> Iterator[tuple[psutil.Popen, int]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_SENTINELS", "PUBLIC_BASE_URL")}
    env.update(REDIS_URL=own_redis.url, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
               DATA_DIR=str(tmp_path), LOG_FORMAT="json")
    log = (tmp_path / "serve.log").open("wb")
    proc = psutil.Popen([sys.executable, "-m", "workers.commands.cli", "serve", "--workers", str(PROCESSES), "--port", str(port)],
                        env=env, cwd=ROOT, stdout=log, stderr=log)
    log.close()
    try:
        yield proc, port
    finally:
        family = _family(proc)
        for member in family:
            _signal(member, signal.SIGCONT)  # a stopped process would never hear SIGTERM
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except psutil.TimeoutExpired:
            proc.kill()
        _, alive = psutil.wait_procs(family, timeout=10)
        for member in alive:
            member.kill()
        assert not alive, f"receiver processes left after serve stopped: {alive}"


def _family(proc: psutil.Process) -> list[psutil.Process]:
    try:
        family: list[psutil.Process] = proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return family


def _signal(proc: psutil.Process, signum: int) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.send_signal(signum)


def _listeners(proc: psutil.Popen, port: int) -> list[psutil.Process]:
    """The processes below `serve` that hold the listening socket and have an app running."""
    assert proc.poll() is None, f"serve exited with {proc.returncode}"
    found = []
    for child in _family(proc):
        try:
            if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in child.net_connections("tcp")):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def _post(port: int, sid: str) -> httpx.Response:
    url = f"http://127.0.0.1:{port}/twilio/recordings/voice"
    params = {"AccountSid": ACCOUNT_SID, "CallSid": "CA" + "2" * 32, "RecordingSid": sid, "RecordingStatus": "completed"}
    # A new connection each time: which process accepts it is the question.
    return httpx.post(url, data=params, headers={"X-Twilio-Signature": sign(AUTH_TOKEN, url, params.items())}, timeout=10)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_each_of_the_processes_answers_callbacks_on_the_one_port(serve: tuple[psutil.Popen, int], own_redis: RedisProcess) -> None:
    proc, port = serve
    def all_listening() -> list[psutil.Process] | None:
        found = _listeners(proc, port)
        return found if len(found) == PROCESSES else None

    listeners: list[psutil.Process] = wait_for(all_listening, timeout=60, what=f"{PROCESSES} receiver processes on port {port}")
    wait_for(lambda: _answers(port), timeout=60, what="the receiver answering")
    redis: Redis = own_redis.client()
    for index, answering in enumerate(listeners):
        # Only `answering` runs: the kernel can hand the connection to no other process.
        for other in listeners:
            if other.pid != answering.pid:
                other.send_signal(signal.SIGSTOP)
        try:
            sid = f"RE{index:032x}"
            response = _post(port, sid)
            assert response.status_code == 204, (answering.pid, response.status_code, response.text)
            assert redis.exists(f"rq:job:rr-voice-{sid}-completed"), f"process {answering.pid} answered but queued nothing"
        finally:
            for other in listeners:
                other.send_signal(signal.SIGCONT)
