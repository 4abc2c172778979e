"""Scale-out on one machine: two receiver and three worker processes against one Redis, a receiver killed mid-load."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from receiver.app.spool import Spool
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.e2e.test_voice_pipeline import callback
from tests.support.paths import REPO_ROOT
from tests.support.servers import free_port, wait_for, wait_for_count
from tests.support.twilio_signing import sign
from workers.jobs.catalog import Catalog
from workers.storage.local import PARTS

ROOT = REPO_ROOT
# Both receivers verify signatures against the one public URL Twilio would call (the proxy's).
PUBLIC_BASE_URL = "https://hooks.example.com"
SIGNED_URL = f"{PUBLIC_BASE_URL}/twilio/recordings/voice"
RECORDINGS = 300


@dataclass
class Process:
    name: str
    proc: subprocess.Popen[bytes]
    data_dir: Path
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/twilio/recordings/voice"


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """Every process the test starts; SIGTERM (then SIGKILL) at the end, whatever happened."""
    started: list[Process] = []
    yield started
    for p in started:
        if p.proc.poll() is None:
            p.proc.send_signal(signal.SIGTERM)
    for p in started:
        try:
            p.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.proc.kill()
            p.proc.wait(timeout=10)


def _env(redis_url: str, standin: Any, data_dir: Path, storage: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("REDIS_SENTINELS", "STORAGE_DIR", "SPOOL_DIR"):
        env.pop(name, None)
    env.update(
        REDIS_URL=redis_url, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_BASE_URL=standin.base_url, PUBLIC_BASE_URL=PUBLIC_BASE_URL, DATA_DIR=str(data_dir),
        STORAGE_DIR=str(storage), LOG_FORMAT="json", RETRY_BASE_SECONDS="0", TWILIO_TIMEOUT_SECONDS="5",
        # No scheduled reconciler pass: every job here must come from a callback.
        RECONCILE_INTERVAL_SECONDS="0",
    )
    return env


def _spawn(name: str, args: list[str], env: dict[str, str], data_dir: Path, port: int = 0) -> Process:
    data_dir.mkdir(parents=True, exist_ok=True)
    log = (data_dir / f"{name}.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "workers.commands.cli", *args], env=env, cwd=ROOT, stdout=log, stderr=log)
    log.close()  # the child holds its own descriptor
    return Process(name, proc, data_dir, port)


def _healthy(p: Process) -> bool:
    assert p.proc.poll() is None, f"{p.name} exited with {p.proc.returncode}; see {p.data_dir / (p.name + '.log')}"
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"http://127.0.0.1:{p.port}/healthz", timeout=1).status_code == 200
    return False


@dataclass
class Sender:
    """Posts one signed callback per recording, like a load balancer in front of the receivers:
    round robin, and a request whose connection failed (or that got no answer) goes to the other."""

    receivers: list[Process]
    acked_by: dict[str, str]
    redirected: Counter[str]

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def send(self, index: int, recording: Any) -> None:
        params = callback(recording)
        headers = {"X-Twilio-Signature": sign(AUTH_TOKEN, SIGNED_URL, params.items())}
        for attempt in range(4):
            target = self.receivers[(index + attempt) % len(self.receivers)]
            try:
                response = httpx.post(target.url, data=params, headers=headers, timeout=10)
            except httpx.ConnectError:
                with self._lock:
                    self.redirected["refused"] += 1
                continue
            except httpx.TransportError:  # killed while handling it: unanswered, so sent again
                with self._lock:
                    self.redirected["unanswered"] += 1
                continue
            assert response.status_code == 204, (target.name, response.status_code, response.text)
            with self._lock:
                self.acked_by[recording.sid] = target.name
            return
        raise AssertionError(f"no receiver took {recording.sid}")


def _archived(redis: Redis, sids: list[str]) -> int:
    pipe = redis.pipeline(transaction=False)
    for sid in sids:
        pipe.hget(f"rr:rec:voice:{sid}", "archived_at")
    return sum(1 for value in pipe.execute() if value)


@pytest.mark.slow
def test_two_receivers_three_workers_receiver_killed_mid_load(
    redis_url: str, redis: Redis, standin: Any, tmp_path: Path, processes: list[Process]
) -> None:
    storage = tmp_path / "shared-storage"
    receivers = []
    for name in ("receiver-a", "receiver-b"):
        port = free_port()
        data_dir = tmp_path / name  # each receiver host has its own disk, so its own spool
        receivers.append(_spawn(name, ["serve", "--port", str(port)], _env(redis_url, standin, data_dir, storage), data_dir, port))
    processes.extend(receivers)
    workers = []
    for index in range(3):
        data_dir = tmp_path / f"worker-{index}"
        args = ["worker", "--concurrency", "4"] + ([] if index == 0 else ["--no-scheduler"])
        workers.append(_spawn(f"worker-{index}", args, _env(redis_url, standin, data_dir, storage), data_dir))
    processes.extend(workers)
    for receiver in receivers:
        wait_for(partial(_healthy, receiver), timeout=20, what=f"{receiver.name} to serve")
    wait_for(lambda: len(redis.smembers("rq:workers")) >= 12, timeout=20, what="12 worker threads to register")

    recordings = [standin.state.add_voice(account_sid=ACCOUNT_SID) for _ in range(RECORDINGS)]
    sids = [r.sid for r in recordings]
    acked_by: dict[str, str] = {}
    redirected: Counter[str] = Counter()
    sender = Sender(receivers, acked_by, redirected)
    victim = receivers[1]
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(sender.send, index, recording) for index, recording in enumerate(recordings)]
        wait_for_count(lambda: len(acked_by), RECORDINGS // 2, what="callbacks acknowledged before the kill")
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(timeout=10)
        for future in futures:
            future.result()

    by_b = [sid for sid, name in acked_by.items() if name == victim.name]
    assert len(acked_by) == RECORDINGS
    assert by_b and len(by_b) < RECORDINGS, "callbacks spread across both receivers"
    assert redirected["refused"] > 0, "requests to the dead receiver were refused and sent to the other one"
    # What B acknowledged is in Redis, not stranded on the dead host's disk.
    with contextlib.closing(Spool(tmp_path / victim.name / "spool" / "events.sqlite3")) as spool:
        assert spool.depth() == 0

    wait_for_count(lambda: _archived(redis, sids), RECORDINGS, interval=0.2, what="recordings archived")

    # Exactly once: one archive, and one job per recording that succeeded once. Under load a
    # kept-alive connection to the stand-in is sometimes reset (reused just as the server's
    # keep-alive timeout closes it); the attempt fails as transient and RQ retries it, as it
    # would against Twilio. Media is fetched alongside the metadata, so such an attempt may have
    # downloaded it too: at most one download per attempt, never one after the archive.
    folder = storage / "voice" / ACCOUNT_SID
    assert sorted(p.name for p in folder.iterdir()) == sorted([PARTS] + [f"{sid}.wav" for sid in sids] + [f"{sid}.json" for sid in sids])
    assert not list(storage.rglob("*.part"))
    for recording in recordings:
        timeline = [json.loads(entry) for entry in redis.lrange(f"rr:timeline:voice:{recording.sid}", 0, -1)]
        attempts = [entry["outcome"] for entry in timeline if entry["kind"] == "job"]
        assert attempts[-1:] == ["done"] and set(attempts[:-1]) <= {"failed (transient)"}, (recording.sid, timeline)
        downloads = [d["status"] for d in standin.state.requests("GET", f"{recording.sid}.wav")]
        assert 200 in downloads and len(downloads) <= len(attempts), (recording.sid, downloads, timeline)
        assert (folder / f"{recording.sid}.wav").read_bytes() == standin.state.media_bytes(recording, "wav")
    assert {sid for sid in sids if Catalog(redis).get("voice", sid).get("archived_at")} == set(sids)

    # The work was spread: jobs keep the name of the RQ worker (a thread) that ran them, and each
    # live worker's hash (rq:worker:<name>, listed in rq:workers) says which process it is in.
    pid_of = {key.decode().removeprefix("rq:worker:"): int(redis.hget(key, "pid") or 0) for key in redis.smembers("rq:workers")}
    ran_by = Counter(
        pid_of.get((redis.hget(f"rq:job:rr-voice-{sid}-completed", "worker_name") or b"").decode(), -1) for sid in sids
    )
    assert -1 not in ran_by and 0 not in ran_by, ran_by
    assert set(ran_by) <= {w.proc.pid for w in workers}
    assert len(ran_by) >= 2, f"jobs per worker process: {ran_by}"
