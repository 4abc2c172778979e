"""`make up` as the README's Quick start shows it: the banner line by line, and what one and two Ctrl-Cs do."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from redis import Redis
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.e2e.test_up import _started_by, _up_env
from tests.support import readme
from tests.support.servers import answers_200, free_port, wait_for
from workers.commands import simulate
from workers.jobs.catalog import Catalog

ROOT = readme.ROOT
pytestmark = pytest.mark.slow


def _pattern(line: str) -> re.Pattern[str]:
    """A README banner line as a pattern: digits (ports) and elided values (`3kq…`) may differ."""
    parts = []
    for piece in re.split(r"(\S*…\S*|\d+)", line):
        if "…" in piece:
            parts.append(r"\S+")
        elif piece.isdigit():
            parts.append(r"\d+")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts))


class Lines:
    """Collects a process's stdout lines as they come, so a test can wait for one."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        with stream:  # closed at EOF, by the thread that reads it
            for line in stream:
                self.lines.append(line.rstrip("\n"))


@pytest.fixture
def stop_all() -> Iterator[list[psutil.Process]]:
    """Processes to kill at teardown if a test left them running."""
    started: list[psutil.Process] = []
    yield started
    for proc in started:
        try:
            for child in proc.children(recursive=True):
                child.kill()
            proc.kill()
        except psutil.Error:
            pass


def test_make_up_prints_the_banner_the_readme_shows(tmp_path: Path, stop_all: list[psutil.Process]) -> None:
    sample = [line for line in readme.block_after("`make up` prints the callback URLs").lines if line.strip()]
    port, admin_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "ADMIN_", "TWILIO_", "PUBLIC_", "DATA_DIR", "STORAGE_"))}
    # As after the README's Quick start: no REDIS_URL, no DATA_DIR, run from the checkout (here a copy's cwd).
    env.update(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, ADMIN_PORT=str(admin_port), LOG_FORMAT="json")
    command = [str(Path(sys.executable).with_name("recording-receiver")), "up", "--port", str(port)]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stop_all.append(psutil.Process(proc.pid))
    try:
        assert proc.stdout is not None
        out = Lines(proc.stdout)
        wait_for(lambda: "Press Ctrl-C to stop." in out.lines, timeout=30, what="the banner")
        banner = list(out.lines)
        assert len(banner) == len(sample), banner
        for shown, printed in zip(sample, banner, strict=False):
            assert _pattern(shown).fullmatch(printed), f"README: {shown!r}\nprinted: {printed!r}"
        assert f"callback   http://127.0.0.1:{port}/twilio/recordings/voice" in banner
        assert f"console    http://127.0.0.1:{admin_port}/" in banner
        assert "storage    data/recordings" in banner and banner[0].endswith("(embedded, append-only file in data/redis, password in data/redis/password)")
        assert (tmp_path / "data" / "redis" / "password").read_text().strip() not in "\n".join(banner)
        # What it prints is true: the health URL answers and the console is there.
        wait_for(lambda: answers_200(f"http://127.0.0.1:{port}/healthz"), timeout=20, what="/healthz")
        wait_for(lambda: answers_200(f"http://127.0.0.1:{admin_port}/healthz"), timeout=20, what="the console")
        assert (tmp_path / "data" / "redis").is_dir()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def _up_with_a_slow_download(
    tmp_path: Path, redis_url: str, standin: Any, delay: float
) -> tuple[subprocess.Popen[bytes], Path, Any]:
    """`up` (one worker) against the stand-in, and a completed recording whose download takes `delay` s."""
    port = free_port()
    env = _up_env(redis_url, tmp_path, TWILIO_API_BASE_URL=standin.base_url, RECONCILE_INTERVAL_SECONDS="0")
    log = tmp_path / "up.log"
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "workers.commands.cli", "up", "--port", str(port), "--workers", "1"],
                                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err)
    wait_for(lambda: answers_200(f"http://127.0.0.1:{port}/healthz"), timeout=30, what="the receiver of up")
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID)
    standin.state.add_fault("GET", f"{recording.sid}.wav", 0, times=1, delay_s=delay)
    url = f"http://127.0.0.1:{port}/twilio/recordings/voice"
    assert simulate.send(url, simulate.voice_params(ACCOUNT_SID, "completed", recording.sid), AUTH_TOKEN).status_code == 204
    folder = tmp_path / "data" / "recordings" / "voice" / ACCOUNT_SID
    wait_for(lambda: folder.exists() and list(folder.rglob("*.part")), timeout=30, what="the download to start")
    return proc, log, recording


def test_ctrl_c_lets_the_running_job_finish_then_stops_everything(
    tmp_path: Path, redis_url: str, redis: Redis, standin: Any, stop_all: list[psutil.Process]
) -> None:
    proc, _, recording = _up_with_a_slow_download(tmp_path, redis_url, standin, delay=4)
    stop_all.append(psutil.Process(proc.pid))
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=90) == 0
    assert Catalog(redis).get("voice", recording.sid).get("archived_at"), "the job in progress was not finished"
    assert not _started_by(tmp_path / "data")


def test_a_second_ctrl_c_stops_at_once_and_leaves_the_job_for_rq_to_retry(
    tmp_path: Path, redis_url: str, redis: Redis, standin: Any, stop_all: list[psutil.Process]
) -> None:
    proc, log, recording = _up_with_a_slow_download(tmp_path, redis_url, standin, delay=300)
    stop_all.append(psutil.Process(proc.pid))
    proc.send_signal(signal.SIGINT)
    wait_for(lambda: "warm shutdown: finishing running jobs" in log.read_text(), timeout=30, what="the worker's warm shutdown")
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)  # far sooner than the 300 s download
    assert not _started_by(tmp_path / "data")
    assert not Catalog(redis).get("voice", recording.sid).get("archived_at")
    # Cut short, not failed: the job is still "started", and its lease lapsing hands it back to RQ
    # (tests/faults/test_faults_worker.py::test_worker_killed_mid_download_is_retried_and_archives_exactly_once).
    job = Job.fetch(f"rr-voice-{recording.sid}-completed", connection=redis, serializer=JSONSerializer)
    assert job.get_status() == JobStatus.STARTED


def test_up_gives_up_on_a_child_failing_three_times_within_ten_seconds_of_starting() -> None:
    """The numbers of the Quick start's sentence; tests/e2e/test_up.py runs the behaviour itself."""
    from workers.commands import supervisor

    said = re.search(r"a process that fails (\w+) times in a row within (\d+) s of starting", readme.text())
    assert said, "the README no longer says when `up` gives up"
    assert {"three": 3}[said.group(1)] == supervisor.START_FAILURES_TO_GIVE_UP
    assert float(said.group(2)) == supervisor.START_WINDOW_SECONDS


def test_up_makes_a_one_off_console_password_only_on_loopback(make_settings: Any) -> None:
    from workers.commands.up_command import _plan_console

    bare = dict(admin_username=None, admin_password=None, admin_token=None)
    local = _plan_console(make_settings(**bare), {})
    assert local.starts and local.env["ADMIN_USERNAME"] == "admin" and len(local.env["ADMIN_PASSWORD"]) >= 16
    assert local.lines[1] == f"login      admin / {local.env['ADMIN_PASSWORD']}  (generated for this run; set ADMIN_USERNAME/ADMIN_PASSWORD to choose)"
    assert _plan_console(make_settings(**bare), {}).env["ADMIN_PASSWORD"] != local.env["ADMIN_PASSWORD"]  # one-off
    public = _plan_console(make_settings(**bare, admin_host="0.0.0.0"), {})
    assert not public.starts and "ADMIN_PASSWORD" not in public.env
    assert public.lines[0].startswith("console    not started: ")
    chosen = _plan_console(make_settings(admin_username="me", admin_password="mine"), {})
    assert chosen.starts and "ADMIN_PASSWORD" not in chosen.env and len(chosen.lines) == 1
