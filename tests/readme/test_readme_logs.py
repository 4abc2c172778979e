"""The README's logs paragraph, on `up`: with LOG_FORMAT=json, through a session with a failed download
and a forged callback, every line on stderr, from every process and library, is one JSON object
naming its role and pid; in the console format each process's lines carry its name."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.e2e.test_up import _up_env
from tests.support.servers import RedisProcess, answers_200, free_port, wait_for
from workers.commands import simulate
from workers.jobs.catalog import Catalog

pytestmark = pytest.mark.slow

REQUIRED = {"timestamp", "level", "logger", "role", "pid", "event"}


def _session(tmp_path: Path, redis_url: str, standin: Any, log_format: str = "json") -> tuple[str, str]:
    """Runs `up` through the session and stops it with Ctrl-C; its stderr, and the recording's SID."""
    port = free_port()
    env = _up_env(redis_url, tmp_path, TWILIO_API_BASE_URL=standin.base_url, RETRY_BASE_SECONDS="0",
                  RECONCILE_INTERVAL_SECONDS="0", LOG_FORMAT=log_format)
    err_path = tmp_path / "up.err"
    with err_path.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "workers.commands.cli", "up", "--port", str(port)],
                                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_for(lambda: answers_200(f"http://127.0.0.1:{port}/healthz"), timeout=60, what="the receiver of up")
        wait_for(lambda: answers_200(f"http://127.0.0.1:{env['ADMIN_PORT']}/healthz"), timeout=60, what="the console")
        recording = standin.state.add_voice(account_sid=ACCOUNT_SID)
        standin.state.add_fault("GET", f"{recording.sid}.wav", 500, times=1)  # one failed attempt, then a retry
        url = f"http://127.0.0.1:{port}/twilio/recordings/voice"
        params = simulate.voice_params(ACCOUNT_SID, "completed", recording.sid)
        assert simulate.send(url, params, AUTH_TOKEN).status_code == 204
        assert httpx.post(url, data=params, headers={"X-Twilio-Signature": "forged"}).status_code == 403
        catalog = Catalog(Redis.from_url(redis_url))
        wait_for(lambda: catalog.get("voice", recording.sid).get("archived_at"), timeout=60, what="the retry to archive it")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    return err_path.read_text(), recording.sid


def test_up_with_json_logs_writes_one_json_object_per_line_from_every_process(
    tmp_path: Path, standin: Any
) -> None:
    redis = RedisProcess(tmp_path / "redis")  # its own: a scheduler lock held by another test's worker is not ours
    try:
        err, sid = _session(tmp_path, redis.url, standin)
    finally:
        redis.stop()
    entries = []
    for line in err.splitlines():
        entry = json.loads(line)  # a line that is not JSON (or two glued together) fails here
        assert isinstance(entry, dict) and entry.keys() >= REQUIRED, line
        entries.append(entry)
    roles = {entry["role"] for entry in entries}
    assert {"receiver", "worker", "scheduler", "console", "up"} <= roles, roles
    assert len({entry["pid"] for entry in entries if entry["role"] in ("receiver", "worker", "console", "up")}) >= 5
    assert any(e["logger"].startswith("uvicorn") and e["role"] == "receiver" for e in entries)  # uvicorn's own lines too
    [failed] = [e for e in entries if e.get("sid") == sid and e["level"] in ("warning", "error")]
    assert (failed["event"], failed["role"], failed["attempt"], failed["error"]) == ("job failed", "worker", 1, "HTTPStatusError")
    assert "500" in failed["reason"] and "exception" not in failed
    assert not [e for e in entries if "exception" in e or "Traceback" in str(e["event"])]  # an expected retry is one line
    [forged] = [e for e in entries if e["event"] == "callback rejected"]
    assert (forged["role"], forged["level"], forged["status"]) == ("receiver", "warning", 403)


def test_up_in_the_console_format_names_the_process_of_every_line(tmp_path: Path, standin: Any) -> None:
    redis = RedisProcess(tmp_path / "redis")
    try:
        err, sid = _session(tmp_path, redis.url, standin, log_format="console")
    finally:
        redis.stop()
    names = {"up", "receiver", "worker-0", "worker-1", "console"}
    by_name: dict[str, list[str]] = {name: [] for name in names}
    for line in err.splitlines():
        name, bar, text = line.partition("| ")
        assert bar and name.strip() in names, line
        by_name[name.strip()].append(text)
    assert all(by_name.values()), {name: len(texts) for name, texts in by_name.items()}
    assert any("job failed" in text and sid in text for text in by_name["worker-0"] + by_name["worker-1"])
    assert any("callback rejected" in text for text in by_name["receiver"])
    with pytest.raises(ValueError):
        json.loads(by_name["receiver"][0])
