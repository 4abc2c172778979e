"""The README's commands doing what it says: check, simulate, worker (--burst, --processes, --no-scheduler), admin, serve."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, Receiver
from tests.support import readme
from tests.support.servers import answers_200, free_port, wait_for
from workers.commands.settings import Settings
from workers.jobs.catalog import Catalog

ROOT = readme.ROOT
COMMAND = str(Path(sys.executable).with_name("recording-receiver"))


def env(**extra: str) -> dict[str, str]:
    """The caller's environment without any of our settings, then `extra`."""
    ours = ("REDIS_", "TWILIO_", "ADMIN_", "PUBLIC_BASE_URL", "LOG_", "DATA_DIR", "STORAGE_DIR", "SPOOL_DIR", "RECONCILE_", "WORKER_", "DELETE_")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    return {**clean, "LOG_FORMAT": "json", **extra}


def run(*args: str, timeout: float = 60, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COMMAND, *args], env=env(**extra), cwd=ROOT, capture_output=True, text=True, timeout=timeout)


# -- check ---------------------------------------------------------------------------------------

def test_check_validates_configuration_and_redis_and_prints_the_urls_to_paste(redis_url: str, tmp_path: Path) -> None:
    # The URL the README tells you to paste into recordingStatusCallback, after `export PUBLIC_BASE_URL=…`.
    [base] = [c.split("=", 1)[1] for _, c in readme.shell_commands() if c.startswith("export PUBLIC_BASE_URL=")]
    pasted = re.search(r"set `recordingStatusCallback` to `([^`]+)`", readme.text())
    assert pasted and pasted.group(1) == f"{base}/twilio/recordings/voice"
    good = run("check", REDIS_URL=redis_url, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
               PUBLIC_BASE_URL=base, DATA_DIR=str(tmp_path))
    assert good.returncode == 0, good.stdout + good.stderr
    lines = good.stdout.splitlines()
    assert f"accounts   {ACCOUNT_SID}" in lines and any(line.startswith("redis      reachable at ") for line in lines)
    assert [line.split()[1] for line in lines if line.startswith("callback ")] == [
        f"{base}/twilio/recordings/{route}" for route in ("voice", "video", "media", "legacy")
    ]
    assert pasted.group(1) in good.stdout
    # Redis that does not answer, or no account to verify callbacks with: said, and exit 1.
    no_redis = run("check", REDIS_URL="redis://127.0.0.1:1/0", TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    assert no_redis.returncode == 1 and "redis      unreachable at " in no_redis.stdout and ": ConnectionError" in no_redis.stdout
    no_account = run("check", REDIS_URL=redis_url)
    assert no_account.returncode == 1 and "accounts   none configured" in no_account.stdout


# -- simulate (Try it without Twilio) ------------------------------------------------------------

def _trial_credentials() -> dict[str, str]:
    """TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN exactly as the README's `export` line sets them."""
    [line] = [c for _, c in readme.shell_commands() if c.startswith("export TWILIO_ACCOUNT_SID=")]
    return dict(word.split("=", 1) for word in line.split()[1:])


def _printed_line_pattern(answer: str = "204") -> re.Pattern[str]:
    """The README's sample output of simulate, `# 204 No Content  RecordingSid=RE…  status=absent`."""
    block = readme.block_after("### Try it without Twilio")
    [sample] = [line.lstrip("# ") for line in block.lines if "RecordingSid=" in line and line.startswith(f"# {answer} ")]
    return re.compile(re.escape(sample).replace("RE…", "RE[0-9a-f]{32}"))


def test_simulate_sends_a_signed_callback_that_is_recorded_without_calling_twilio(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    from tests.conftest import drain

    trial = _trial_credentials()  # "any values work for a trial"
    settings = pipeline_settings(twilio_account_sid=trial["TWILIO_ACCOUNT_SID"], twilio_auth_token=trial["TWILIO_AUTH_TOKEN"])
    receiver = start_receiver(settings)
    shown = next(c for _, c in readme.shell_commands() if " simulate " in c).split()
    args = [receiver.url() if word.startswith("http://") else word for word in shown[2:]]
    assert args[1:] == ["--status", "absent"]
    done = run("simulate", *args, **trial)
    assert done.returncode == 0, done.stderr
    assert _printed_line_pattern().fullmatch(done.stdout.strip()), done.stdout
    absent = done.stdout.split("RecordingSid=")[1].split()[0]
    # A failed one too; --recording-sid reuses a SID (here: a second status of the same recording).
    failed = run("simulate", receiver.url(), "--status", "failed", "--recording-sid", absent, **trial)
    assert failed.returncode == 0 and f"RecordingSid={absent}  status=failed" in failed.stdout
    jobs = Queue("recordings", connection=redis, serializer=JSONSerializer).job_ids
    assert sorted(jobs) == sorted([f"rr-voice-{absent}-absent", f"rr-voice-{absent}-failed"])
    drain(settings)
    state = Catalog(redis).get("voice", absent)
    assert state["status"] in ("absent", "failed") and state["error_meaning"]
    assert standin.state.requests() == [], "an absent or failed event must not call Twilio"
    # Signed with another token: refused, and simulate says so with its exit code.
    refused = run("simulate", receiver.url(), "--status", "absent", TWILIO_ACCOUNT_SID=trial["TWILIO_ACCOUNT_SID"],
                  TWILIO_AUTH_TOKEN="not-the-token")
    assert refused.returncode == 1 and refused.stdout.startswith("403 Forbidden")
    # "The same command without the signature … is refused with 403": the README's command, as shown.
    [unsigned] = [c.split() for _, c in readme.shell_commands() if " simulate " in c and "--unsigned" in c]
    assert unsigned[2:] == [*shown[2:], "--unsigned"]
    queued = Queue("recordings", connection=redis, serializer=JSONSerializer).count
    not_signed = run("simulate", *args, "--unsigned", TWILIO_ACCOUNT_SID=trial["TWILIO_ACCOUNT_SID"],
                     TWILIO_AUTH_TOKEN=trial["TWILIO_AUTH_TOKEN"])
    assert not_signed.returncode == 0, not_signed.stdout + not_signed.stderr
    assert _printed_line_pattern("403").fullmatch(not_signed.stdout.strip()), not_signed.stdout
    assert Queue("recordings", connection=redis, serializer=JSONSerializer).count == queued  # no job


# -- worker --------------------------------------------------------------------------------------

def _queue_absent(receiver: Receiver, count: int) -> list[str]:
    from workers.commands.simulate import new_sid, voice_params

    sids = [new_sid("RE") for _ in range(count)]
    for sid in sids:
        assert receiver.post(receiver.url(), voice_params(ACCOUNT_SID, "absent", sid)).status_code == 204
    return sids


def _worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    return dict(REDIS_URL=settings.redis_url or "", TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                DATA_DIR=str(settings.data_dir), RECONCILE_INTERVAL_SECONDS="0", **extra)


@pytest.mark.parametrize("processes", ["1", "2"])
def test_worker_burst_processes_the_queue_and_exits(
    make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], redis: Redis, processes: str
) -> None:
    settings = make_settings()
    receiver = start_receiver(settings)
    sids = _queue_absent(receiver, 6)
    done = run("worker", "--burst", "--processes", processes, "--concurrency", "2", timeout=90, **_worker_env(settings))
    assert done.returncode == 0, done.stderr[-3000:]
    assert [Catalog(redis).get("voice", sid).get("status") for sid in sids] == ["absent"] * len(sids)


def _children(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    return [c for c in psutil.Process(proc.pid).children() if c.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.parametrize("scheduler", [True, False])
def test_worker_processes_run_n_threads_each_and_the_scheduler_in_one_of_them(
    make_settings: Callable[..., Settings], redis: Redis, scheduler: bool
) -> None:
    settings = make_settings()
    args = [COMMAND, "worker", "--processes", "2", "--concurrency", "3"] + ([] if scheduler else ["--no-scheduler"])
    proc = subprocess.Popen(args, env=env(**_worker_env(settings)), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        def registered() -> dict[int, int]:
            pids: dict[int, int] = {}
            for key in redis.smembers("rq:workers"):
                pid = int(redis.hget(key, "pid") or 0)
                pids[pid] = pids.get(pid, 0) + 1
            return pids if sum(pids.values()) == 6 else {}

        per_process = wait_for(registered, timeout=40, what="2 processes × 3 worker threads to register")
        children = wait_for(lambda: len(_children(proc)) == 2 and _children(proc), timeout=10, what="two worker processes")
        assert set(per_process) == {c.pid for c in children} and set(per_process.values()) == {3}
        with_scheduler = [c.pid for c in children if "--no-scheduler" not in c.cmdline()]
        assert len(with_scheduler) == (1 if scheduler else 0), [c.cmdline() for c in children]
        if scheduler:
            lock = wait_for(lambda: redis.get("rq:scheduler-lock:recordings"), timeout=20, what="RQ's scheduler lock")
            assert int(redis.hget(b"rq:scheduler:" + lock, "pid") or 0) == with_scheduler[0]
        else:
            assert redis.get("rq:scheduler-lock:recordings") is None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


# -- admin and serve -----------------------------------------------------------------------------

def _serving(proc: subprocess.Popen[bytes], url: str) -> bool:
    assert proc.poll() is None, f"exited with {proc.returncode}"
    return answers_200(url)


@pytest.mark.parametrize("how", ["ADMIN_PORT", "--port"])
def test_admin_serves_the_console_alone_on_its_own_port(redis_url: str, how: str) -> None:
    port = free_port()
    args = [COMMAND, "admin"] + (["--port", str(port)] if how == "--port" else [])
    extra = {"REDIS_URL": redis_url, "ADMIN_USERNAME": "operator", "ADMIN_PASSWORD": "pw-for-the-readme-test"}
    if how == "ADMIN_PORT":
        extra["ADMIN_PORT"] = str(port)
    proc = subprocess.Popen(args, env=env(**extra), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _serving(proc, base + "/healthz"), timeout=30, what="the console")
        assert httpx.get(base + "/").status_code == 303  # the console, asking to sign in
        assert httpx.get(base + "/twilio/recordings/voice").status_code in (303, 404)  # no receiver here
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_runs_the_public_receiver_only(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    extra = {"REDIS_URL": redis_url, "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen([COMMAND, "serve", "--port", str(port)], env=env(**extra), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _serving(proc, base + "/healthz"), timeout=30, what="the receiver")
        for path in ("/", "/login", "/metrics", "/api/overview", "/recordings", "/failures", "/workers"):
            assert httpx.get(base + path).status_code == 404, path
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# -- RQ's own tools ------------------------------------------------------------------------------

def test_rq_info_works_on_our_queue(make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver]) -> None:
    settings = make_settings()
    receiver = start_receiver(settings)
    _queue_absent(receiver, 2)
    [shown] = [c for c in readme.inline_code() if c.startswith(".venv/bin/rq info")]
    args = [settings.redis_url or "" if word == "$REDIS_URL" else word for word in shown.split()[1:]]
    done = subprocess.run([str(Path(sys.executable).with_name("rq")), *args], env=env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^recordings\s+\|\S*\s+2,", done.stdout, flags=re.M) and "2 jobs total" in done.stdout, done.stdout
