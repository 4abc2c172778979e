"""Worker benchmark: our default worker set-up vs RQ's default forking worker, same workload.

    python -m tests.perf.worker_bench [--jobs 300] [--latency-ms 50] [--media-bytes 1048576]

A Twilio stand-in (its own process) adds --latency-ms to every API call and serves media of
--media-bytes. Each case drains the same number of queued completed-recording jobs (metadata
fetch + media download + metadata file) and reports recordings archived per second and the
peak memory of all its processes. A third run measures callback-to-archived latency at a steady
rate of signed callbacks through the receiver.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from redis import Redis

from receiver.events import RecordingEvent, Source, Status
from receiver.settings import Settings
from tests.perf.harness import ROOT, end, start_uvicorn, stop
from tests.servers import RedisProcess, answers_200, free_port, wait_for
from tests.twilio_signing import sign
from workers.catalog import Catalog
from workers.context import WorkerContext

ACCOUNT = "AC" + "1" * 32
TOKEN = "bench-token"


@dataclass
class Result:
    name: str
    archived: int
    seconds: float
    peak_rss_mb: float

    @property
    def rate(self) -> float:
        return self.archived / self.seconds


def start_standin(latency_ms: float, media_bytes: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.standin", "--port", str(port), "--latency-ms", str(latency_ms),
         "--media-bytes", str(media_bytes), "--account", ACCOUNT, "--token", TOKEN],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers_200(base + "/_standin/requests"), timeout=20, what="the stand-in")
    return proc, base


def seed(base: str, count: int) -> list[str]:
    with httpx.Client(base_url=base) as client:
        return [client.post("/_standin/recordings/voice", json={"account_sid": ACCOUNT}).json()["sid"] for _ in range(count)]


def env_for(redis_url: str, standin: str, data_dir: Path) -> dict[str, str]:
    return {**os.environ, "REDIS_URL": redis_url, "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_API_BASE_URL": standin, "DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"}


def enqueue(env: dict[str, str], sids: list[str]) -> None:
    ctx = WorkerContext(Settings(redis_url=env["REDIS_URL"], data_dir=Path(env["DATA_DIR"])))
    for sid in sids:
        ctx.enqueuer.submit(RecordingEvent(Source.VOICE, sid, Status.COMPLETED, ACCOUNT))


def _tree_rss(procs: list[psutil.Process]) -> int:
    total = 0
    for proc in procs:
        try:
            family = [proc, *proc.children(recursive=True)]
            total += sum(p.memory_info().rss for p in family)
        except psutil.NoSuchProcess:
            pass
    return total


def drain(name: str, commands: list[list[str]], env: dict[str, str], redis_url: str, sids: list[str]) -> Result:
    catalog = Catalog(Redis.from_url(redis_url))
    started = time.monotonic()
    procs = [psutil.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for cmd in commands]
    peak = 0
    archived = 0
    deadline = started + 900
    while time.monotonic() < deadline:
        peak = max(peak, _tree_rss(procs))
        archived = sum(1 for sid in sids if catalog.redis.hexists(f"rr:rec:voice:{sid}", "archived_at"))
        if archived == len(sids):
            break
        time.sleep(0.25)
    elapsed = time.monotonic() - started
    for proc in procs:
        end(proc)
    return Result(name, archived, elapsed, peak / 2**20)


async def steady_latency(receiver_url: str, standin: str, redis_url: str, rate: int, seconds: int) -> list[float]:
    """Signed callbacks at a fixed rate; latency = archived_at - time the callback was sent."""
    sids = await asyncio.to_thread(seed, standin, rate * seconds)
    url = receiver_url + "/twilio/recordings/voice"
    sent: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=15) as client:
        async def send(sid: str) -> None:
            params = [("AccountSid", ACCOUNT), ("RecordingSid", sid), ("RecordingStatus", "completed"), ("CallSid", "CA" + "2" * 32)]
            sent[sid] = time.time()
            await client.post(url, data=dict(params), headers={"X-Twilio-Signature": sign(TOKEN, url, params)})

        tasks = []
        start = time.monotonic()
        for index, sid in enumerate(sids):
            await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
            tasks.append(asyncio.create_task(send(sid)))
        await asyncio.gather(*tasks)
    redis = Redis.from_url(redis_url)
    wait_for(lambda: all(redis.hexists(f"rr:rec:voice:{s}", "archived_at") for s in sids), timeout=120, what="archiving")
    return [float(redis.hget(f"rr:rec:voice:{s}", "archived_at")) - sent[s] for s in sids]  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--rq-jobs", type=int, default=60, help="RQ's forking worker is slow; fewer jobs suffice")
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--media-bytes", type=int, default=1024 * 1024)
    parser.add_argument("--steady-rate", type=int, default=50)
    parser.add_argument("--steady-seconds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        redis_proc = RedisProcess(work / "redis")
        standin, base = start_standin(args.latency_ms, args.media_bytes)
        try:
            rq_bin = str(Path(sys.executable).with_name("rq"))
            results = []
            for name, count, commands in (
                ("rq default worker", args.rq_jobs,
                 [[rq_bin, "worker", "--burst", "--url", redis_proc.url, "--serializer", "rq.serializers.JSONSerializer", "recordings"]]),
                ("ours (as `up`)", args.jobs,
                 [[sys.executable, "-m", "workers.cli", "worker"], [sys.executable, "-m", "workers.cli", "worker", "--no-scheduler"]]),
            ):
                redis_proc.client().flushall()
                env = env_for(redis_proc.url, base, work / name.split()[0])
                sids = seed(base, count)
                enqueue(env, sids)
                results.append(drain(name, commands, env, redis_proc.url, sids))
            redis_proc.client().flushall()
            env = env_for(redis_proc.url, base, work / "steady")
            workers = [psutil.Popen([sys.executable, "-m", "workers.cli", "worker", *extra], env=env, cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for extra in ([], ["--no-scheduler"])]
            # No PUBLIC_BASE_URL: the callbacks are signed over the loopback URL they are sent to.
            receiver = start_uvicorn("receiver.app:create_app", env, factory=True)
            try:
                latencies = asyncio.run(steady_latency(receiver.base_url, base, redis_proc.url, args.steady_rate, args.steady_seconds))
            finally:
                stop(receiver)
                for proc in workers:
                    end(proc)
        finally:
            end(standin)
            redis_proc.stop()
    print(f"stand-in latency {args.latency_ms:.0f} ms per API call, media {args.media_bytes} bytes; {psutil.cpu_count()} cores")
    print(f"{'case':<20}{'archived':>9}{'seconds':>9}{'rec/s':>9}{'peak RSS MB':>13}")
    for r in results:
        print(f"{r.name:<20}{r.archived:>9}{r.seconds:>9.1f}{r.rate:>9.1f}{r.peak_rss_mb:>13.0f}")
    print(f"ratio ours / rq default: {results[1].rate / results[0].rate:.1f}x")
    q = statistics.quantiles(latencies, n=100)
    print(f"callback-to-archived at {args.steady_rate}/s for {args.steady_seconds}s: "
          f"p50 {q[49] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
