"""Worker benchmark: our worker set-up vs `rq worker-pool` at equal concurrency and at equal memory.

    python -m tests.perf.worker_bench [--quick] [--window 10] [--latency-ms 50] [--media-bytes 1048576]

Real processes throughout: a real redis-server, the Twilio stand-in (its own process) adding
--latency-ms to every API call and serving media of --media-bytes, and each case's workers
started as commands. Every case gets the same queue: the same completed voice recordings,
enqueued by our own enqueuer (the receiver's job hash, RQ's JSON serializer), drained into a
fresh storage directory; a recording costs a metadata fetch, a media download and a metadata file.

Cases:
- ours: the `up` configuration, two `recording-receiver worker` processes × 8 threads (16 jobs at once).
- `rq worker-pool -n 16`, RQ's forking `Worker` (a work horse forked per job), and the same
  with `-w rq.worker.SimpleWorker` (jobs in the worker process): the same 16 jobs at once.
- both RQ worker classes again with as many workers as fit in the memory ours used (its peak PSS
  divided by the RQ case's peak PSS per worker at 16, one fewer while that uses over 10 % more
  than ours): the same memory budget. PSS, not summed
  RSS: RSS counts pages forked processes share once per process, charging RQ for memory it
  does not use; both are shown.

How RQ runs our jobs, as fairly as we know: RQ's own command and worker classes (preloaded with
our job module, `tests/perf/rq_preloaded.py`, as RQ's performance notes advise), given our job
class (`-j workers.runtime.rq_internals.job_allowlist.AllowlistedJob`, the one our workers use: allowlist and atomic
retries), RQ's JSON serializer (`-S rq.serializers.JSONSerializer`) and the same environment.
`workers.jobs.process_recording` builds its `WorkerContext` (settings, Redis, HTTP pool, Twilio
clients) from the environment on first use (`workers.jobs.context.current`), so no other hook is needed:
a SimpleWorker builds it once per process, as ours does; a forking worker builds it in every work
horse, which is what forking per job costs. RQ's log level is WARNING, as in ours.

Figures: recordings archived per second from the first archived recording until --window seconds
later (start-up excluded for every case), and the peak over the case of the summed RSS of every
process it started (pool parent, workers, work horses), and of their PSS, sampled with psutil
every 0.25 s.
A last run measures callback-to-archived latency at a steady rate of signed callbacks through
the receiver, with ours. --quick shortens the window and the steady run (a smoke run, not figures).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
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

from receiver.kernel.events import RecordingEvent, Source, Status
from tests.perf.harness import ROOT, end, start_uvicorn, stop
from tests.support.servers import RedisProcess, answers_200, free_port, wait_for
from tests.support.twilio_signing import sign
from workers.commands.settings import Settings
from workers.jobs.context import WorkerContext

ACCOUNT = "AC" + "1" * 32
TOKEN = "bench-token"
CONCURRENCY = 16  # ours: the `up` configuration, 2 processes × WORKER_THREADS 8
SAMPLE_SECONDS = 0.25
OVER_BUDGET = 1.1  # an equal-memory case may use this much more than ours before it gets one worker fewer
RQ_JOB_OPTIONS = ["-S", "rq.serializers.JSONSerializer", "-j", "workers.runtime.rq_internals.job_allowlist.AllowlistedJob", "-l", "WARNING"]


@dataclass
class Result:
    name: str
    concurrency: int
    archived: int
    seconds: float
    peak_rss: int
    peak_pss: int

    @property
    def rate(self) -> float:
        return self.archived / self.seconds if self.seconds else 0.0

    @property
    def rss_mb(self) -> float:
        return self.peak_rss / 2**20

    @property
    def pss_mb(self) -> float:
        return self.peak_pss / 2**20


def start_standin(media_bytes: int, latency_ms: float = 0.0) -> tuple[subprocess.Popen[bytes], str]:
    """The bench starts it with no latency: seeding through its control routes would pay it per recording."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.standin", "--port", str(port), "--media-bytes", str(media_bytes),
         "--latency-ms", str(latency_ms),
         "--account", ACCOUNT, "--token", TOKEN],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers_200(base + "/_standin/requests"), timeout=20, what="the stand-in")
    return proc, base


def seed(base: str, count: int) -> list[str]:
    with httpx.Client(base_url=base) as client:
        return [client.post("/_standin/recordings/voice", json={"account_sid": ACCOUNT}).json()["sid"] for _ in range(count)]


def set_latency(base: str, latency_ms: float) -> None:
    httpx.post(base + "/_standin/latency", json={"seconds": latency_ms / 1000}).raise_for_status()


def env_for(redis_url: str, standin: str, data_dir: Path) -> dict[str, str]:
    return {**os.environ, "REDIS_URL": redis_url, "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_API_BASE_URL": standin, "DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json",
            "PYTHONPATH": str(ROOT)}


def enqueue(env: dict[str, str], sids: list[str]) -> None:
    ctx = WorkerContext(Settings(redis_url=env["REDIS_URL"], data_dir=Path(env["DATA_DIR"])))
    for sid in sids:
        ctx.enqueuer.submit(RecordingEvent(Source.VOICE, sid, Status.COMPLETED, ACCOUNT))


def family_memory(procs: list[psutil.Popen]) -> tuple[int, int]:
    """(RSS, PSS) summed over the started processes and all their descendants."""
    rss = pss = 0
    for proc in procs:
        try:
            family = [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for member in family:
            try:
                info = member.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue  # a work horse that finished between listing and reading
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
    return rss, pss


def count_archived(redis: Redis, sids: list[str]) -> int:
    pipe = redis.pipeline(transaction=False)
    for sid in sids:
        pipe.hexists(f"rr:rec:voice:{sid}", "archived_at")
    return sum(1 for hit in pipe.execute() if hit)


def stop_group(procs: list[psutil.Popen], grace: float = 5.0) -> None:
    """SIGTERM every started process, then SIGKILL its whole session (pool workers, horses)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs:
        with contextlib.suppress(psutil.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # each was started in its own session: pgid == pid
        proc.wait()


def run_case(name: str, concurrency: int, commands: list[list[str]], env: dict[str, str], redis: Redis,
             sids: list[str], window: float) -> Result:
    redis.flushall()
    data_dir = Path(env["DATA_DIR"])
    shutil.rmtree(data_dir, ignore_errors=True)
    enqueue(env, sids)
    procs = [psutil.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True) for cmd in commands]
    peak_rss = peak_pss = 0
    first: tuple[float, int] | None = None
    archived, now = 0, time.monotonic()
    deadline = now + 120
    try:
        while now < deadline:
            rss, pss = family_memory(procs)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            archived, now = count_archived(redis, sids), time.monotonic()
            if first is None and archived:
                first = (now, archived)
            if first is not None and (now - first[0] >= window or archived == len(sids)):
                break
            if any(proc.poll() is not None for proc in procs):
                raise RuntimeError(f"{name}: a process exited early: {[p.args for p in procs if p.poll() is not None]}")
            time.sleep(SAMPLE_SECONDS)
        if first is None:
            raise RuntimeError(f"{name}: nothing archived in 120 s")
    finally:
        stop_group(procs)
        shutil.rmtree(data_dir, ignore_errors=True)
    return Result(name, concurrency, archived - first[1], now - first[0], peak_rss, peak_pss)


async def steady_latency(receiver_url: str, standin: str, redis_url: str, args: argparse.Namespace) -> list[float]:
    """Signed callbacks at a fixed rate; latency = archived_at - time the callback was sent."""
    rate, seconds = args.steady_rate, args.steady_seconds
    set_latency(standin, 0)
    sids = await asyncio.to_thread(seed, standin, rate * seconds)
    set_latency(standin, args.latency_ms)
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
    wait_for(lambda: count_archived(redis, sids) == len(sids), timeout=120, what="archiving")
    return [float(redis.hget(f"rr:rec:voice:{s}", "archived_at")) - sent[s] for s in sids]  # type: ignore[arg-type]


def ours(concurrency: int) -> list[list[str]]:
    threads = ["--concurrency", str(concurrency // 2)]
    return [[sys.executable, "-m", "workers.commands.cli", "worker", *threads],
            [sys.executable, "-m", "workers.commands.cli", "worker", "--no-scheduler", *threads]]


def rq_pool(workers: int, url: str, simple: bool) -> list[list[str]]:
    rq_bin = str(Path(sys.executable).with_name("rq"))
    worker_class = ["-w", f"tests.perf.rq_preloaded.{'SimpleWorker' if simple else 'Worker'}"]
    return [[rq_bin, "worker-pool", "-n", str(workers), "-u", url, *RQ_JOB_OPTIONS, *worker_class, "recordings"]]


def measure(args: argparse.Namespace, work: Path, redis_proc: RedisProcess, base: str) -> list[Result]:
    sids = seed(base, args.jobs)
    set_latency(base, args.latency_ms)
    env = env_for(redis_proc.url, base, work / "storage")
    redis = redis_proc.client()

    def case(name: str, concurrency: int, commands: list[list[str]]) -> Result:
        result = run_case(name, concurrency, commands, env, redis, sids, args.window)
        print(f"  {result.name}: {result.rate:.1f}/s, {result.rss_mb:.0f} MB RSS", file=sys.stderr, flush=True)
        return result

    results = [case("ours (as `up`)", CONCURRENCY, ours(CONCURRENCY))]
    # The budget is PSS, not summed RSS: RSS counts the pages forked workers share with their
    # parent once per process, which would charge RQ's pool for memory it does not use.
    budget = results[0].peak_pss
    for label, simple in (("fork", False), ("SimpleWorker", True)):
        same = case(f"rq pool {label}", CONCURRENCY, rq_pool(CONCURRENCY, redis_proc.url, simple))
        fitting = max(1, int(budget // (same.peak_pss / CONCURRENCY)))
        fit = case(f"rq pool {label}", fitting, rq_pool(fitting, redis_proc.url, simple))
        # Fewer workers share the parent's pages among fewer processes: each weighs more than at 16.
        while fit.peak_pss > budget * OVER_BUDGET and fitting > 1:
            # Re-fitted from what this many weighed, not one at a time: a first guess far off (a
            # sample taken while the pool was still starting) would otherwise take a case per worker.
            fitting = max(1, min(fitting - 1, int(budget // (fit.peak_pss / fitting))))
            fit = case(f"rq pool {label}", fitting, rq_pool(fitting, redis_proc.url, simple))
        results += [same, fit]
    return results


def latency_run(args: argparse.Namespace, work: Path, redis_proc: RedisProcess, base: str) -> list[float]:
    redis_proc.client().flushall()
    env = env_for(redis_proc.url, base, work / "steady")
    workers = [psutil.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for cmd in ours(CONCURRENCY)]
    # No PUBLIC_BASE_URL: the callbacks are signed over the loopback URL they are sent to.
    receiver = start_uvicorn("receiver.app.factory:create_app", env, factory=True)
    try:
        return asyncio.run(steady_latency(receiver.base_url, base, redis_proc.url, args))
    finally:
        stop(receiver)
        for proc in workers:
            end(proc)


def report(args: argparse.Namespace, results: list[Result], latencies: list[float]) -> None:
    ours_result = results[0]
    print(f"stand-in latency {args.latency_ms:.0f} ms per API call, media {args.media_bytes} bytes; "
          f"{psutil.cpu_count()} cores; window {args.window:.0f} s from the first archived recording")
    print(f"{'case':<22}{'jobs at once':>13}{'archived':>9}{'seconds':>9}{'rec/s':>8}{'peak RSS MB':>13}"
          f"{'peak PSS MB':>13}{'ours ×':>8}{'RSS / ours':>12}{'PSS / ours':>12}")
    for r in results:
        print(f"{r.name:<22}{r.concurrency:>13}{r.archived:>9}{r.seconds:>9.1f}{r.rate:>8.1f}{r.rss_mb:>13.0f}"
              f"{r.pss_mb:>13.0f}{ours_result.rate / r.rate if r.rate else float('inf'):>8.1f}"
              f"{r.peak_rss / ours_result.peak_rss:>12.2f}{r.peak_pss / ours_result.peak_pss:>12.2f}")
    q = statistics.quantiles(latencies, n=100)
    print(f"callback-to-archived at {args.steady_rate}/s for {args.steady_seconds}s: "
          f"p50 {q[49] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short smoke run: 4 s windows, 4 s steady run")
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured per case")
    parser.add_argument("--jobs", type=int, default=1500, help="recordings queued per case (more than any case archives)")
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--media-bytes", type=int, default=1024 * 1024)
    parser.add_argument("--steady-rate", type=int, default=50)
    parser.add_argument("--steady-seconds", type=int, default=10)
    args = parser.parse_args()
    if args.quick:
        args.window, args.jobs, args.steady_seconds = 4.0, 600, 4
    return args


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        redis_proc = RedisProcess(work / "redis")
        standin, base = start_standin(args.media_bytes)
        try:
            results = measure(args, work, redis_proc, base)
            latencies = latency_run(args, work, redis_proc, base)
        finally:
            end(standin)
            redis_proc.stop()
    report(args, results, latencies)


if __name__ == "__main__":
    main()
