"""Chaos run: distinct signed callbacks against the full stack while Redis restarts and workers die.

    python -m tests.perf.chaos [--callbacks 5000] [--redis-restarts 2] [--kill-every 4]

Starts its own redis-server (append-only file), Twilio stand-in, receiver and two worker
processes on loopback; sends every callback once (bounded concurrency, a deadline for the run);
meanwhile restarts Redis and SIGKILLs a random worker, starting a new one each time. Then it
waits for the pipeline to settle and prints: accepted, processed, lost, processed twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from redis import Redis
from redis.exceptions import RedisError

from tests.perf.harness import ROOT, end, start_uvicorn, stop
from tests.perf.worker_bench import ACCOUNT, TOKEN, seed, start_standin
from tests.servers import RedisProcess
from tests.twilio_signing import sign


class Chaos(threading.Thread):
    """Restarts Redis `restarts` times and kills a random worker every `kill_every` seconds."""

    def __init__(self, redis: RedisProcess, workers: list[subprocess.Popen[bytes]], start_worker: object,
                 restarts: int, kill_every: float, duration: float) -> None:
        super().__init__(daemon=True)
        self.redis, self.workers, self.start_worker = redis, workers, start_worker
        self.restart_at = sorted(random.uniform(0.15, 0.85) * duration for _ in range(restarts))
        self.kill_every, self.duration = kill_every, duration
        self.stopped = threading.Event()
        self.log: list[str] = []

    def run(self) -> None:
        began = time.monotonic()
        next_kill = began + self.kill_every
        while not self.stopped.wait(0.1):
            now = time.monotonic() - began
            if self.restart_at and now >= self.restart_at[0]:
                self.restart_at.pop(0)
                self.redis.stop()
                self.log.append(f"{now:6.1f}s redis stopped")
                self.stopped.wait(random.uniform(1.0, 3.0))
                self.redis.start()
                self.log.append(f"{time.monotonic() - began:6.1f}s redis started")
            if time.monotonic() >= next_kill:
                next_kill += self.kill_every
                victim = random.randrange(len(self.workers))
                self.workers[victim].kill()
                self.workers[victim].wait()
                self.workers[victim] = self.start_worker()  # type: ignore[operator]
                self.log.append(f"{time.monotonic() - began:6.1f}s worker {victim} SIGKILLed and replaced")


async def send_all(url: str, sids: list[str], concurrency: int) -> tuple[set[str], int]:
    """Each callback once; returns the SIDs answered 2xx and the count of other answers."""
    accepted: set[str] = set()
    refused = 0
    queue: asyncio.Queue[str] = asyncio.Queue()
    for sid in sids:
        queue.put_nowait(sid)

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal refused
        while not queue.empty():
            sid = queue.get_nowait()
            params = [("AccountSid", ACCOUNT), ("CallSid", "CA" + "3" * 32), ("RecordingSid", sid), ("RecordingStatus", "completed")]
            try:
                response = await client.post(url, data=dict(params), headers={"X-Twilio-Signature": sign(TOKEN, url, params)})
                if response.status_code < 300:
                    accepted.add(sid)
                else:
                    refused += 1
            except httpx.HTTPError:
                refused += 1

    async with httpx.AsyncClient(timeout=20) as client:
        await asyncio.gather(*(sender(client) for _ in range(concurrency)))
    return accepted, refused


def settle(redis_url: str, accepted: set[str], deadline: float) -> tuple[int, int]:
    """Wait until every accepted recording is archived (or the deadline); count done twice."""
    redis = Redis.from_url(redis_url)
    archived: set[str] = set()
    while time.monotonic() < deadline and len(archived) < len(accepted):
        try:
            pipe = redis.pipeline(transaction=False)
            pending = sorted(accepted - archived)
            for sid in pending:
                pipe.hexists(f"rr:rec:voice:{sid}", "archived_at")
            archived |= {sid for sid, done in zip(pending, pipe.execute()) if done}
        except RedisError:
            pass
        time.sleep(1)
    for sid in sorted(accepted - archived)[:5]:
        job = redis.hgetall(f"rq:job:rr-voice-{sid}-completed")
        print(f"lost {sid}: ledger={redis.exists(f'rr:ledger:voice:{sid}:completed')} "
              f"job status={job.get(b'status')!r} retries_left={job.get(b'retries_left')!r} "
              f"in queue={redis.lpos('rq:queue:recordings', f'rr-voice-{sid}-completed')} "
              f"intermediate={redis.lpos('rq:queue:recordings:intermediate', f'rr-voice-{sid}-completed')} "
              f"wip={[k for k in redis.zrange('rq:wip:recordings', 0, -1) if sid.encode() in k]} "
              f"scheduled={redis.zscore('rq:scheduled:recordings', f'rr-voice-{sid}-completed')} "
              f"failed={redis.zscore('rq:failed:recordings', f'rr-voice-{sid}-completed')} "
              f"timeline={redis.lrange(f'rr:timeline:voice:{sid}', 0, -1)} exc={(job.get(b'exc_info') or b'')[-300:]!r}")
    twice = 0
    for sid in accepted:
        entries = [json.loads(e) for e in redis.lrange(f"rr:timeline:voice:{sid}", 0, -1)]
        if sum(1 for e in entries if e.get("kind") == "job" and e.get("outcome") == "done") > 1:  # "already archived" re-runs do not count
            twice += 1
    return len(archived), twice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callbacks", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--redis-restarts", type=int, default=2)
    parser.add_argument("--kill-every", type=float, default=4.0)
    parser.add_argument("--settle-seconds", type=float, default=300.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        redis_proc = RedisProcess(work / "redis")
        standin, base = start_standin(latency_ms=5, media_bytes=4096)
        env = {**os.environ, "REDIS_URL": redis_proc.url, "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN,
               "TWILIO_API_BASE_URL": base, "DATA_DIR": str(work / "data"), "LOG_LEVEL": "WARNING",
               "LOG_FORMAT": "json", "WORKER_LEASE_SECONDS": "8", "WORKER_MAINTENANCE_SECONDS": "5", "RETRY_BASE_SECONDS": "1"}

        logs_dir = Path(os.environ.get("CHAOS_LOGS", work / "logs"))
        logs_dir.mkdir(parents=True, exist_ok=True)

        def start_worker(scheduler: bool = False) -> subprocess.Popen[bytes]:
            extra = [] if scheduler else ["--no-scheduler"]
            log = (logs_dir / f"worker-{'scheduler' if scheduler else time.monotonic_ns()}.log").open("w")
            return subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", *extra], env=env, cwd=ROOT,
                                    stdout=log, stderr=log)

        # The scheduler runs in a worker the chaos never kills, as a deployment keeps it apart.
        scheduler = start_worker(scheduler=True)
        workers = [start_worker(), start_worker()]
        receiver = start_uvicorn("receiver.app:create_app", env, factory=True)
        sids = seed(base, args.callbacks)
        chaos = Chaos(redis_proc, workers, start_worker, args.redis_restarts, args.kill_every, duration=args.callbacks / 250)
        started = time.monotonic()
        chaos.start()
        try:
            accepted, refused = asyncio.run(send_all(receiver.base_url + "/twilio/recordings/voice", sids, args.concurrency))
            sent_for = time.monotonic() - started
            while chaos.restart_at:  # let every planned Redis restart happen
                time.sleep(0.2)
            chaos.stopped.set()
            chaos.join()
            processed, twice = settle(redis_proc.url, accepted, time.monotonic() + args.settle_seconds)
        finally:
            stop(receiver)
            for proc in [scheduler, *workers]:
                end(proc, grace=5)
            end(standin)
            redis_proc.stop()
    print("\n".join(chaos.log))
    print(f"sent {len(sids)} distinct callbacks in {sent_for:.1f}s")
    print(f"accepted {len(accepted)}  refused {refused}  processed {processed}  "
          f"lost {len(accepted) - processed}  processed twice {twice}")


if __name__ == "__main__":
    main()
