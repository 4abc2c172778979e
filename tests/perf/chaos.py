"""Chaos run: distinct signed callbacks against the full stack while Redis and workers are SIGKILLed.

    python -m tests.perf.chaos [--callbacks 3000] [--redis-kills 2] [--kill-every 3]
    python -m tests.perf.chaos --storage s3 [--s3-restarts 2] [--s3-down-seconds 4] [--s3-faults 0.03]

Starts its own redis-server (append-only file), Twilio stand-in, receiver and two worker
processes on loopback; sends every callback once (bounded concurrency, a deadline for the run);
meanwhile SIGKILLs Redis (and starts it again from its append-only file) and SIGKILLs a random
worker, starting a new one each time. Then it waits for the pipeline to settle and prints what a
user would count: accepted, archived, lost; final files written more than once (every write
into the storage folder, seen by inotify); media downloads per recording (the stand-in's request
log); temp files left in storage.

With --storage s3 the archive goes to an S3 server on loopback (moto, tests/support/s3_faults.py)
that answers 503 SlowDown and 500 InternalError, cuts connections mid-upload and after the write
(each with the --s3-faults chance per request) and restarts --s3-restarts times, refusing
connections for --s3-down-seconds. Lost then means an accepted callback without both objects, the
media's sha256 that of the bytes the stand-in served; written twice counts the create writes
(PutObject, CompleteMultipartUpload) the server completed more than once for one key, and
unfinished multipart uploads are listed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
from redis import Redis
from redis.exceptions import RedisError

from tests.perf.file_writes import FileWrites
from tests.perf.harness import ROOT, end, start_uvicorn, stop
from tests.perf.worker_bench import ACCOUNT, TOKEN, seed, start_standin
from tests.standin.media import media_for
from tests.support.s3_faults import Faults, FaultyS3
from tests.support.s3_server import CREDENTIALS
from tests.support.s3_server import client as s3_client
from tests.support.servers import RedisProcess
from tests.support.twilio_signing import sign


@dataclass
class S3Outages:
    server: FaultyS3
    restarts: int
    down_seconds: float


class Chaos(threading.Thread):
    """SIGKILLs Redis `restarts` times (then starts it again) and a random worker every `kill_every` seconds."""

    def __init__(self, redis: RedisProcess, workers: list[subprocess.Popen[bytes]], start_worker: object,
                 restarts: int, kill_every: float, duration: float, s3: S3Outages | None = None) -> None:
        super().__init__(daemon=True)
        self.redis, self.workers, self.start_worker = redis, workers, start_worker
        self.restart_at = sorted(random.uniform(0.15, 0.85) * duration for _ in range(restarts))
        self.s3 = s3
        self.s3_restart_at = sorted(random.uniform(0.1, 0.9) * duration for _ in range(s3.restarts if s3 else 0))
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
                self.redis.kill()
                self.log.append(f"{now:6.1f}s redis SIGKILLed")
                self.stopped.wait(random.uniform(1.0, 3.0))
                self.redis.start()
                self.log.append(f"{time.monotonic() - began:6.1f}s redis started")
            if self.s3 and self.s3_restart_at and time.monotonic() - began >= self.s3_restart_at[0]:
                self.s3_restart_at.pop(0)
                self.log.append(f"{time.monotonic() - began:6.1f}s S3 server down (connections refused, requests in flight cut)")
                self.s3.server.restart(self.s3.down_seconds)
                self.log.append(f"{time.monotonic() - began:6.1f}s S3 server up again")
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


def settle(redis_url: str, accepted: set[str], deadline: float) -> int:
    """Wait until every accepted recording is archived (or the deadline); returns how many are."""
    redis = Redis.from_url(redis_url)
    archived: set[str] = set()
    while time.monotonic() < deadline and len(archived) < len(accepted):
        try:
            pipe = redis.pipeline(transaction=False)
            pending = sorted(accepted - archived)
            for sid in pending:
                pipe.hexists(f"rr:rec:voice:{sid}", "archived_at")
            archived |= {sid for sid, done in zip(pending, pipe.execute(), strict=False) if done}
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
    return len(archived)


def downloads_per_recording(base: str, accepted: set[str]) -> Counter[int]:
    """How many recordings had their media fetched n times (a fetch cut by a SIGKILL counts too)."""
    log = httpx.get(base + "/_standin/requests", timeout=30).json()
    per_sid = Counter(entry["path"].rsplit("/", 1)[1].split(".")[0] for entry in log
                      if entry["method"] == "GET" and entry["path"].endswith(".wav"))
    return Counter(per_sid.get(sid, 0) for sid in accepted)


def temp_files(storage: Path) -> list[Path]:
    return sorted(storage.rglob(".*.part"))


BUCKET = "chaos-archive"
PREFIX = "archive"


@dataclass
class S3Count:
    """What the S3 server holds after a run, against what the stand-in served."""

    archived: int
    lost: list[str]
    written_twice: list[str]
    unfinished_uploads: list[str]
    faults: Counter[str]


def s3_env(server: FaultyS3, work: Path) -> dict[str, str]:
    """A worker's storage settings: the loopback server, the test keys, no file of the machine's."""
    return {"STORAGE_URL": f"s3://{BUCKET}/{PREFIX}", "STORAGE_ENDPOINT_URL": server.endpoint, **CREDENTIALS,
            "AWS_CONFIG_FILE": str(work / "no-aws-config"), "AWS_SHARED_CREDENTIALS_FILE": str(work / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true"}


def count_s3(server: FaultyS3, accepted: set[str], media_bytes: int) -> S3Count:
    """Lost: no media object with the served bytes' sha256, or no metadata object naming it."""
    server.faults = Faults()
    s3 = s3_client(server.endpoint)
    try:
        folder = f"{PREFIX}/voice/{ACCOUNT}"
        lost = []
        for sid in sorted(accepted):
            served = hashlib.sha256(media_for(sid, "wav", media_bytes)).hexdigest()
            try:
                media = hashlib.sha256(s3.get_object(Bucket=BUCKET, Key=f"{folder}/{sid}.wav")["Body"].read()).hexdigest()
                record = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{folder}/{sid}.json")["Body"].read())
            except s3.exceptions.NoSuchKey:
                lost.append(sid)
                continue
            if media != served or record.get("media", {}).get("sha256") != served:
                lost.append(sid)
        unfinished = [u["Key"] for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]
        # The bucket's own count, beside the server's: a key with two versions was written twice.
        versions: Counter[str] = Counter()
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET):
            versions.update(v["Key"] for v in page.get("Versions", []))
    finally:
        s3.close()
    twice = set(server.written_more_than_once()) | {f"/{BUCKET}/{key}" for key, n in versions.items() if n > 1}
    return S3Count(len(accepted) - len(lost), lost, sorted(twice), unfinished, server.done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callbacks", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--redis-kills", type=int, default=2)
    parser.add_argument("--kill-every", type=float, default=3.0)
    parser.add_argument("--settle-seconds", type=float, default=300.0)
    parser.add_argument("--chaos-seconds", type=float, default=None,
                        help="the span the planned restarts fall in (default: callbacks / 250, the time to send them)")
    parser.add_argument("--storage", choices=["local", "s3"], default="local")
    parser.add_argument("--s3-restarts", type=int, default=2)
    parser.add_argument("--s3-down-seconds", type=float, default=4.0)
    parser.add_argument("--s3-faults", type=float, default=0.03,
                        help="chance per request of each S3 fault: 503 SlowDown, 500, cut mid-upload, cut after the write")
    args = parser.parse_args()
    media_bytes = 4096
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        redis_proc = RedisProcess(work / "redis")
        standin, base = start_standin(latency_ms=5, media_bytes=media_bytes)
        env = {**os.environ, "REDIS_URL": redis_proc.url, "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN,
               "TWILIO_API_BASE_URL": base, "DATA_DIR": str(work / "data"), "LOG_LEVEL": "WARNING",
               "LOG_FORMAT": "json", "WORKER_LEASE_SECONDS": "8", "WORKER_MAINTENANCE_SECONDS": "5", "RETRY_BASE_SECONDS": "1"}
        s3: FaultyS3 | None = None
        if args.storage == "s3":
            s3 = FaultyS3()
            s3.start()
            s3.make_bucket(BUCKET)
            env = {k: v for k, v in env.items() if not k.startswith("AWS_")} | s3_env(s3, work)
            chance = args.s3_faults
            s3.faults = Faults(slow_down=chance, internal=chance, cut_mid_upload=chance, cut_after_write=chance)

        logs_dir = Path(os.environ.get("CHAOS_LOGS", work / "logs"))
        logs_dir.mkdir(parents=True, exist_ok=True)

        def start_worker(scheduler: bool = False) -> subprocess.Popen[bytes]:
            extra = [] if scheduler else ["--no-scheduler"]
            log = (logs_dir / f"worker-{'scheduler' if scheduler else time.monotonic_ns()}.log").open("w")
            return subprocess.Popen([sys.executable, "-m", "workers.commands.cli", "worker", *extra], env=env, cwd=ROOT,
                                    stdout=log, stderr=log)

        try:  # first, alone: on a busy machine it may take a while to answer
            receiver = start_uvicorn("receiver.app.factory:create_app", env, factory=True, timeout=90)
        except BaseException:
            end(standin)
            redis_proc.stop()
            if s3 is not None:
                s3.stop()
            raise
        # The scheduler runs in a worker the chaos never kills, as a deployment keeps it apart.
        scheduler = start_worker(scheduler=True)
        workers = [start_worker(), start_worker()]
        sids = seed(base, args.callbacks)
        storage = work / "data" / "recordings"
        writes = FileWrites(storage / "voice" / ACCOUNT)
        writes.start()
        outages = S3Outages(s3, args.s3_restarts, args.s3_down_seconds) if s3 else None
        chaos = Chaos(redis_proc, workers, start_worker, args.redis_kills, args.kill_every,
                      duration=args.chaos_seconds or args.callbacks / 250, s3=outages)
        started = time.monotonic()
        chaos.start()
        counted: S3Count | None = None
        try:
            accepted, refused = asyncio.run(send_all(receiver.base_url + "/twilio/recordings/voice", sids, args.concurrency))
            sent_for = time.monotonic() - started
            while chaos.restart_at or chaos.s3_restart_at:  # let every planned restart happen
                time.sleep(0.2)
            chaos.stopped.set()
            chaos.join()
            processed = settle(redis_proc.url, accepted, time.monotonic() + args.settle_seconds)
            downloads = downloads_per_recording(base, accepted)
            if s3 is not None:
                counted = count_s3(s3, accepted, media_bytes)
        finally:
            writes.stop()
            stop(receiver)
            for proc in [scheduler, *workers]:
                end(proc, grace=5)
            end(standin)
            redis_proc.stop()
            if s3 is not None:
                s3.stop()
            leftovers = temp_files(storage)
    report(chaos.log, len(sids), sent_for, accepted, refused, processed, writes, downloads, leftovers, counted)


def report(log: list[str], sent: int, sent_for: float, accepted: set[str], refused: int, processed: int,
           writes: FileWrites, downloads: Counter[int], leftovers: list[Path], s3: S3Count | None = None) -> None:
    print("\n".join(log))
    print(f"sent {sent} distinct callbacks in {sent_for:.1f}s")
    if s3 is None:
        twice = writes.written_more_than_once()
        print(f"accepted {len(accepted)}  refused {refused}  archived {processed}  lost {len(accepted) - processed}")
        print(f"archived twice {len(twice)} (final files written more than once: {', '.join(twice[:5]) or 'none'})"
              f"{'  [inotify overflowed: counts are a lower bound]' if writes.overflowed else ''}")
    else:
        print(f"accepted {len(accepted)}  refused {refused}  archived {s3.archived}  lost {len(s3.lost)}"
              f"{'  (' + ', '.join(s3.lost[:5]) + ')' if s3.lost else ''}  (catalog says archived {processed})")
        print(f"archived twice {len(s3.written_twice)} (objects written more than once: {', '.join(s3.written_twice[:5]) or 'none'})")
        print("S3 faults: " + (", ".join(f"{what} {n}" for what, n in sorted(s3.faults.items())) or "none"))
        print(f"unfinished multipart uploads {len(s3.unfinished_uploads)}" + "".join(f"\n    {k}" for k in s3.unfinished_uploads[:5]))
    print("media downloads per recording: " + ", ".join(f"{n}× {count}" for n, count in sorted(downloads.items())))
    print(f"leftover temp files {len(leftovers)}" + "".join(f"\n    {p}" for p in leftovers[:5]))


if __name__ == "__main__":
    main()
