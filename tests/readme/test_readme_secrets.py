"""Secrets never appear in a log line or an error: receiver and worker at DEBUG, commands, Redis, storage."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, SECONDARY_TOKEN
from tests.e2e.test_voice_pipeline import callback
from tests.support import readme
from tests.support.servers import answers_200, free_port, wait_for
from tests.support.twilio_signing import sign, sign_sha256
from workers.jobs.catalog import Catalog

ROOT = readme.ROOT
COMMAND = str(Path(sys.executable).with_name("recording-receiver"))
SHARED_KEY = "shared-key-secret-value-7f3a"
SECRETS = {
    "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_AUTH_TOKEN_SECONDARY": SECONDARY_TOKEN,
    "ADMIN_PASSWORD": "admin-password-secret-5c1d", "ADMIN_TOKEN": "admin-token-secret-9e2b",
    "ADMIN_SECRET_KEY": "admin-signing-key-secret-44aa", "REDIS_SENTINEL_PASSWORD": "sentinel-password-secret-0b7c",
}


def _redis_text(redis: Redis) -> str:
    """Every value of every key in Redis, as text: whatever a worker or the receiver kept."""
    parts = []
    for key in redis.scan_iter(count=1000):
        kind = redis.type(key).decode()
        if kind == "string":
            parts.append(redis.get(key) or b"")
        elif kind == "hash":
            parts += [b"%s=%s" % pair for pair in redis.hgetall(key).items()]
        elif kind == "list":
            parts += redis.lrange(key, 0, -1)
        elif kind == "set":
            parts += list(redis.smembers(key))
        elif kind == "zset":
            parts += redis.zrange(key, 0, -1)
        elif kind == "stream":
            parts += [b"%s=%s" % pair for _, fields in redis.xrange(key) for pair in fields.items()]
        parts.append(key)
    return b"\n".join(parts).decode("utf-8", "replace")


@contextlib.contextmanager
def _process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen([COMMAND, *args], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)


@pytest.mark.slow
def test_no_secret_reaches_a_log_line_an_error_redis_or_storage(
    redis_url: str, redis: Redis, standin: Any, tmp_path: Path
) -> None:
    key = standin.state.add_api_key(ACCOUNT_SID)
    secrets = dict(SECRETS, TWILIO_API_KEY_SECRET=key.secret, TWILIO_WEBHOOK_SHARED_KEYS=SHARED_KEY)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "TWILIO_", "ADMIN_", "PUBLIC_", "LOG_"))}
    env.update(
        REDIS_URL=redis_url, PUBLIC_BASE_URL=base, DATA_DIR=str(tmp_path / "data"), LOG_LEVEL="DEBUG", LOG_FORMAT="json",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_API_KEY_SID=key.sid, TWILIO_API_BASE_URL=standin.base_url,
        RETRY_BASE_SECONDS="0", RECONCILE_INTERVAL_SECONDS="0",
        **{name: value for name, value in secrets.items() if name != "TWILIO_WEBHOOK_SHARED_KEYS"},
        TWILIO_WEBHOOK_SHARED_KEYS=json.dumps({"key1": SHARED_KEY}),
    )
    fine, refused, other = (standin.state.add_voice(account_sid=ACCOUNT_SID) for _ in range(3))
    standin.state.add_fault("GET", f"{refused.sid}.json", 401, times=-1)  # a job that fails with Twilio's error
    url = f"{base}/twilio/recordings/voice"
    outputs: list[str] = []
    with _process(["serve", "--port", str(port)], env, tmp_path / "receiver.log"):
        wait_for(lambda: answers_200(base + "/healthz"), timeout=30, what="the receiver")
        for recording, token in ((fine, AUTH_TOKEN), (refused, SECONDARY_TOKEN)):
            params = callback(recording)
            assert httpx.post(url, data=params, headers={"X-Twilio-Signature": sign(token, url, params.items())}).status_code == 204
        absent = callback(other, "absent")
        shared = {"X-Twilio-Signature": sign_sha256(SHARED_KEY, url, absent.items()),
                  "X-Twilio-Webhooks-Signature-Settings": "key=key1,algorithm=HMAC_SHA256"}
        assert httpx.post(url, data=absent, headers=shared).status_code == 204
        forged = callback(other, "failed")
        for signature in (sign("not-the-token", url, forged.items()), "garbage"):
            assert httpx.post(url, data=forged, headers={"X-Twilio-Signature": signature}).status_code == 403
        worker = subprocess.run([COMMAND, "worker", "--burst"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert worker.returncode == 0, worker.stdout + worker.stderr
        outputs += [worker.stdout, worker.stderr]
    assert Catalog(redis).get("voice", fine.sid).get("archived_at")
    assert Catalog(redis).get("voice", refused.sid).get("archived_at") is None  # failed, with Twilio's 401 as its cause
    for command in (["check"], ["reconcile", "--source", "voice"], ["reconcile", "--since", "not a date"]):
        done = subprocess.run([COMMAND, *command], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        outputs += [done.stdout, done.stderr]
    seen = {
        "receiver log": (tmp_path / "receiver.log").read_text(),
        "worker and command output": "\n".join(outputs),
        "Redis": _redis_text(redis),
        "storage": "\n".join(p.read_text(errors="replace") for p in (tmp_path / "data").rglob("*.json")),
    }
    assert '"callback rejected"' in seen["receiver log"] and '"token": "secondary"' in seen["receiver log"]
    assert "Twilio answered 401" in seen["Redis"]  # the failed job's error is there, and nothing secret with it
    for where, text in seen.items():
        leaked = [name for name, value in secrets.items() if value in text]
        assert not leaked, f"{where} shows {leaked}"
