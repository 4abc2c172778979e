"""`recording-receiver up` as a user runs it: one command, a real Redis, answers within 10 s, Ctrl-C stops all;
a port it cannot listen on, or a child that keeps failing at start, stops it with the reason."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from redis import Redis
from redis.exceptions import RedisError

from receiver.kernel import logs
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.support.paths import REPO_ROOT
from tests.support.servers import answers_200, free_port, wait_for
from workers.commands import simulate, supervisor

ROOT = REPO_ROOT


@pytest.mark.slow
def test_up_serves_processes_a_callback_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PUBLIC_BASE_URL")}
    # No scheduled reconcile pass: falling due mid-test, it would list recordings at the real Twilio.
    env.update(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, LOG_FORMAT="json",
               ADMIN_PORT=str(free_port()), RECONCILE_INTERVAL_SECONDS="0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "workers.commands.cli", "up", "--data-dir", str(tmp_path / "data"), "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        # A deadline for a hang, not a budget: how fast it starts is the benchmark's business.
        wait_for(lambda: answers_200(f"http://127.0.0.1:{port}/healthz"), timeout=60, what="/healthz")
        assert proc.stdout is not None
        banner = "".join(proc.stdout.readline() for _ in range(10))
        assert f"http://127.0.0.1:{port}/twilio/recordings/voice" in banner
        shown = re.search(r"redis      redis://:\*\*\*@127\.0\.0\.1:(\d+)/0 ", banner)
        assert shown, banner
        password = (tmp_path / "data" / "redis" / "password").read_text().strip()
        assert password not in banner
        url = f"http://127.0.0.1:{port}/twilio/recordings/voice"
        params = simulate.voice_params(ACCOUNT_SID, "absent")
        assert simulate.send(url, params, AUTH_TOKEN).status_code == 204
        redis = Redis.from_url(f"redis://:{password}@127.0.0.1:{shown.group(1)}/0")
        with pytest.raises(RedisError, match=r"(?i)auth"):
            Redis(host="127.0.0.1", port=int(shown.group(1)), protocol=2).set("k", "v")
        key = f"rr:rec:voice:{params['RecordingSid']}"
        wait_for(lambda: redis.hget(key, "status") == b"absent", timeout=15, what="a worker to record the event")
        redis.close()
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
        proc.communicate(timeout=40)  # waits, and closes its stdout
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


# Far beyond the 10 s: a test that hangs fails here rather than holding the suite.
UP_TIMEOUT = 30

Up = Callable[..., "subprocess.CompletedProcess[str]"]


def _up_env(redis_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "ADMIN_", "TWILIO_")) and k != "PUBLIC_BASE_URL"}
    env.update(REDIS_URL=redis_url, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, LOG_FORMAT="json",
               ADMIN_PORT=str(free_port()), DATA_DIR=str(tmp_path / "data"), RECONCILE_INTERVAL_SECONDS="0")
    env.update(extra)
    return env


def _started_by(data_dir: Path) -> list[psutil.Process]:
    """Every live process whose environment names this test's DATA_DIR: `up` and all it started,
    found even after `up` is gone (its children run in sessions of their own)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("DATA_DIR") == str(data_dir) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    """Runs `up` to its end, bounded by UP_TIMEOUT; kills whatever it left behind at teardown."""

    def run(port: int, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "workers.commands.cli", "up", "--port", str(port)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=UP_TIMEOUT,
        )

    yield run
    for proc in _started_by(tmp_path / "data"):
        proc.kill()


def _assert_refused_before_starting(result: subprocess.CompletedProcess[str], address: str, setting: str) -> None:
    assert result.returncode != 0
    assert result.stdout == ""  # not a line of the banner, the embedded Redis's included
    [line] = result.stderr.strip().splitlines()
    assert address in line and setting in line, line


def test_up_refuses_a_receiver_port_in_use_before_printing_or_starting_anything(
    up: Up, taken_port: int, redis_url: str, tmp_path: Path
) -> None:
    result = up(taken_port, _up_env(redis_url, tmp_path))
    _assert_refused_before_starting(result, f"127.0.0.1:{taken_port}", "--port")
    assert not _started_by(tmp_path / "data")


def test_up_refuses_a_console_port_in_use_before_printing_or_starting_anything(
    up: Up, taken_port: int, redis_url: str, tmp_path: Path
) -> None:
    result = up(free_port(), _up_env(redis_url, tmp_path, ADMIN_PORT=str(taken_port)))
    _assert_refused_before_starting(result, f"127.0.0.1:{taken_port}", "ADMIN_PORT")
    assert not _started_by(tmp_path / "data")


def test_up_refuses_the_same_port_for_receiver_and_console(up: Up, redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    result = up(port, _up_env(redis_url, tmp_path, ADMIN_PORT=str(port)))
    _assert_refused_before_starting(result, str(port), "ADMIN_PORT")
    assert "--port" in result.stderr


@pytest.mark.slow
def test_up_stops_everything_with_the_last_error_of_a_child_that_keeps_failing_at_start(
    up: Up, redis_url: str, tmp_path: Path
) -> None:
    # A subaccounts file with a key that is not an account SID: the receiver refuses it at start.
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps({"not-an-account": {"auth_token": "x"}}))
    result = up(free_port(), _up_env(redis_url, tmp_path, TWILIO_ACCOUNTS_FILE=str(accounts)))
    assert result.returncode != 0
    assert "Press Ctrl-C to stop." in result.stdout  # the ports were free: it did start
    report = result.stderr.strip().splitlines()[-1]
    assert re.match(r"recording-receiver: receiver exited with code [1-9]\d* .*'not-an-account' is not an account SID$", report), report
    assert not _started_by(tmp_path / "data")


@pytest.mark.slow
def test_supervisor_restarts_a_child_that_ran_past_the_start_window_and_gives_up_on_one_that_keeps_failing_at_start(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    logs.configure("INFO", "json", role="up")
    monkeypatch.setattr(supervisor, "START_WINDOW_SECONDS", 2.0)
    monkeypatch.setattr(supervisor, "MAX_BACKOFF_SECONDS", 0.0)
    sup = supervisor.Supervisor()
    starts = 0

    def start() -> subprocess.Popen[bytes]:
        nonlocal starts
        starts += 1
        if starts > 12:
            sup.stopping = True  # it never gave up: end wait() so the assertions below fail
        # Three runs that outlive the window and then die must each be restarted (and their deaths
        # must not count towards giving up); then three failures at start in a row give up.
        code = "import sys, time; time.sleep(2.5); sys.exit(5)" if starts <= 3 else "import sys; sys.exit('bad config')"
        return subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)

    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        sup.adopt("child", start)
        assert sup.wait() == 1
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
        for child in sup.children:
            if child.proc.poll() is None:
                child.proc.kill()
    assert starts == 6
    err = capfd.readouterr().err
    *lines, last = err.strip().splitlines()
    entries = [json.loads(line) for line in lines]  # JSON logs: every line but the final report
    restarts = [e for e in entries if e["event"] == "child exited; restarting" and e["code"] == 5]
    assert [(e["child"], e["role"], e["level"]) for e in restarts] == [("child", "up", "warning")] * 3, err
    # Each failure's stderr relayed, a line it wrote outside any log becoming one JSON line in its name.
    relayed = [e for e in entries if e["event"] == "bad config"]
    assert [(e["role"], e["logger"]) for e in relayed] == [("child", "stderr")] * 3, err
    assert last == (
        "recording-receiver: child exited with code 1 within 2s of starting, 3 times in a row; stopped everything. "
        "Its last error: bad config"
    ), last
