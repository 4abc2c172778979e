"""Receiver benchmark: bare no-op endpoints vs the tutorial receiver vs ours (stock and fast pipe), one run.

    python -m tests.perf.receiver_bench [--seconds 10] [--connections 64] [--rounds 3] [--cases bare,stock,fast]

Every case runs in one uvicorn process with the same settings on a free loopback port, driven by
wrk cycling through distinct, correctly signed voice callbacks; the table ends with the check
that every 2xx became exactly one queued job. Cases take turns for --rounds rounds and the table
shows each case's median round. `stock` and `fast` are both recording-receiver as `serve` builds
it (workers.commands.serve_processes.served_app: the app, then the collector tuned), with
REDIS_PIPE=stock (redis-py's public asyncio client) and REDIS_PIPE=fast (the pipelined connection);
`bare` is Starlette answering 204, `asgi` a raw ASGI callable doing the same, both with the same
collector settings. Beside throughput: the server's CPU time per request and Redis's CPU share
(Redis shares a core with wrk), and the load average when each round started, since on a shared
machine that is what the figures mostly follow.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil
from redis import Redis
from redis.exceptions import ResponseError

from tests.perf.harness import Sampler, WrkResult, cpu_split, run_wrk, start_uvicorn, stop
from tests.support.servers import RedisProcess, wait_for
from tests.support.twilio_signing import sign
from workers.commands.simulate import new_sid

ACCOUNT = "AC" + "0" * 32
TOKEN = "bench-auth-token"
PUBLIC = "https://bench.example.com"
URL = PUBLIC + "/twilio/recordings/voice"


def write_bodies(path: Path, count: int) -> None:
    """Distinct callbacks, signed by the independent signer; one `signature<TAB>body` per line."""
    with path.open("w") as out:
        for _ in range(count):
            sid = new_sid("RE")
            params = [
                ("AccountSid", ACCOUNT), ("CallSid", new_sid("CA")), ("RecordingSid", sid),
                ("RecordingStatus", "completed"), ("RecordingDuration", "42"), ("RecordingChannels", "1"),
                ("RecordingSource", "OutboundAPI"), ("RecordingStartTime", "Mon, 22 Aug 2022 16:36:22 +0000"),
                ("RecordingUrl", f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{sid}"),
            ]
            body = "&".join(f"{k}={_quote(v)}" for k, v in params)
            out.write(f"{sign(TOKEN, URL, params)}\t{body}\n")


def _quote(value: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(value)


@dataclass
class Row:
    name: str
    wrk: WrkResult
    cpu: float
    rss_mb: float
    jobs: int | None
    distinct_jobs: int | None
    redis_cpu: float
    load: float  # the 1-minute load average when the round started

    def check(self, connections: int) -> str:
        """Every 2xx is one job, and no recording is queued twice. wrk stops with up to one
        request per connection sent but its answer unread: those are queued too, so jobs may
        exceed the 2xx wrk counted by at most the number of connections."""
        if self.jobs is None:
            return "-"
        ok_2xx = self.wrk.requests - self.wrk.non_2xx - self.wrk.errors
        if self.distinct_jobs != self.jobs:
            return "DUPLICATE"
        return "ok" if 0 <= self.jobs - ok_2xx <= connections else "MISMATCH"

    @property
    def cpu_per_request_us(self) -> float:
        """The server's CPU time per answered request: what its throughput is once it has a core."""
        return self.cpu * 10_000 / self.wrk.rps if self.wrk.rps else float("nan")


def run_case(
    name: str, case: Case, env: dict[str, str], redis_proc: RedisProcess, bodies: Path, args: argparse.Namespace,
    cpus: set[int] | None,
) -> Row:
    seconds, connections, threads = args.seconds, args.connections, args.wrk_threads
    redis = redis_proc.client()
    redis.flushall()
    load = os.getloadavg()[0]
    server = start_uvicorn(case.target, {**env, **case.env}, factory=True, cpus=cpus)
    try:
        run_wrk(server.base_url, bodies, 2, connections, threads)  # warm-up, then start clean
        settled(redis)
        redis.flushall()
        compacted(redis)
        with Sampler(server.proc.pid) as sampler, Sampler(redis_proc.proc.pid) as redis_sampler:
            result = run_wrk(server.base_url, bodies, seconds, connections, threads)
    finally:
        stop(server)
    cpu, redis_cpu = busy(sampler, result), busy(redis_sampler, result)
    ids: list[bytes] = redis.lrange("rq:queue:recordings", 0, -1)  # type: ignore[assignment]
    redis.close()
    jobs, distinct = (None, None) if name in NO_JOBS else (len(ids), len(set(ids)))
    return Row(name, result, cpu, sampler.peak_rss / 2**20, jobs, distinct, redis_cpu, load)


def busy(sampler: Sampler, result: WrkResult) -> float:
    """The server's CPU over the time wrk sent requests: the sampled window also holds wrk's
    start-up (it formats every request first), when the server idles."""
    return 100 * sampler.cpu_seconds / result.seconds


def settled(redis: Redis) -> None:
    """Until the server has finished the requests wrk left unanswered when the warm-up ended
    (the queue stops growing): else they land after the flush and count as the run's jobs."""
    lengths = [-1]

    def stopped_growing() -> bool:
        lengths.append(int(redis.llen("rq:queue:recordings")))  # type: ignore[arg-type]
        return lengths[-1] == lengths[-2]

    wait_for(stopped_growing, timeout=30, interval=0.3, what="the warm-up's last requests")


def compacted(redis: Redis) -> None:
    """Rewrite the append-only file now, before the run: the file grows through every case and
    round, and a rewrite due to earlier cases' writes would fork Redis during this one's run."""
    with contextlib.suppress(ResponseError):  # one is already running: wait for it all the same
        redis.bgrewriteaof()

    def rewritten() -> bool:
        state = redis.info("persistence")
        return not state["aof_rewrite_in_progress"] and not state["aof_rewrite_scheduled"]

    wait_for(rewritten, timeout=60, interval=0.1, what="Redis's append-only file rewrite")


@dataclass(frozen=True)
class Case:
    target: str
    env: dict[str, str]


# Ours as `serve` runs it: before, the bench built receiver.app.factory:create_app, which (rightly) leaves
# the collector alone since `serve` tunes it, so it measured a receiver nobody runs, default
# collector thresholds and full collections of start-up objects in its p99.
SERVED = "workers.commands.serve_processes:served_app"
CASES = {
    "bare": Case("tests.perf.apps:bare_app", {}),
    "asgi": Case("tests.perf.apps:asgi_app", {}),
    "tutorial": Case("tests.perf.apps:tutorial_app", {}),
    "stock": Case(SERVED, {"REDIS_PIPE": "stock"}),
    "fast": Case(SERVED, {"REDIS_PIPE": "fast"}),
}
NO_JOBS = {"bare", "asgi"}  # cases that queue nothing, so have no jobs to check
DEFAULT_CASES = ("bare", "tutorial", "stock", "fast")


def median_round(runs: list[Row]) -> Row:
    return sorted(runs, key=lambda run: run.wrk.rps)[len(runs) // 2]


def table(rows: list[Row], connections: int) -> str:
    """Ratios are to the bare endpoint and the tutorial receiver, when the run had them."""
    named = {row.name: row.wrk for row in rows}
    bare, tutorial = named.get("bare"), named.get("tutorial")
    lines = [
        f"machine: {platform.processor() or platform.machine()}, {psutil.cpu_count()} cores, Python {platform.python_version()}",
        f"{'case':<10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU %':>8}{'µs/req':>8}{'Redis %':>8}{'RSS MB':>8}"
        f"{'vs bare':>9}{'p99/bare':>9}{'vs tut.':>9}{'2xx':>9}{'jobs':>9}{'check':>8}{'load':>6}",
    ]
    for row in rows:
        w = row.wrk
        ok_2xx = w.requests - w.non_2xx - w.errors
        check = row.check(connections)
        vs_bare = f"{w.rps / bare.rps:>9.0%}{w.p99_ms / bare.p99_ms:>8.2f}x" if bare else f"{'-':>9}{'-':>9}"
        vs_tutorial = f"{w.rps / tutorial.rps:>8.1f}x" if tutorial else f"{'-':>9}"
        lines.append(
            f"{row.name:<10}{w.rps:>10.0f}{w.p50_ms:>9.2f}{w.p99_ms:>9.2f}{row.cpu:>8.0f}{row.cpu_per_request_us:>8.0f}"
            f"{row.redis_cpu:>8.0f}{row.rss_mb:>8.0f}{vs_bare}{vs_tutorial}{ok_2xx:>9}"
            f"{row.jobs if row.jobs is not None else '-':>9}{check:>8}{row.load:>6.2f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--bodies", type=int, default=400_000)
    # One wrk thread leaves the second core to the server and Redis; the same for every case.
    parser.add_argument("--wrk-threads", type=int, default=1)
    # This machine's speed drifts by the hour: cases take turns, round after round, and the
    # table shows each case's median round, so a slow spell does not land on one case alone.
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES), help=f"comma-separated, of {', '.join(CASES)}")
    args = parser.parse_args()
    names = args.cases.split(",")
    if not set(names) <= set(CASES):
        parser.error(f"--cases: choose from {', '.join(CASES)}")
    cases = {name: CASES[name] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bodies = work / "bodies.tsv"
        write_bodies(bodies, args.bodies)
        split = cpu_split()
        if split:
            os.sched_setaffinity(0, split[1])  # this process, wrk and Redis (started from here)
        redis_proc = RedisProcess(work / "redis")
        env = {"REDIS_URL": redis_proc.url, "PUBLIC_BASE_URL": PUBLIC, "TWILIO_ACCOUNT_SID": ACCOUNT,
               "TWILIO_AUTH_TOKEN": TOKEN, "DATA_DIR": str(work / "data"), "LOG_FORMAT": "json"}
        rounds: dict[str, list[Row]] = {name: [] for name in cases}
        try:
            for _ in range(args.rounds):
                for name, case in cases.items():
                    rounds[name].append(run_case(name, case, env, redis_proc, bodies, args, split[0] if split else None))
        finally:
            redis_proc.stop()
    rows = [median_round(runs) for runs in rounds.values()]
    print(table(rows, args.connections))
    for name, runs in rounds.items():
        each = ", ".join(
            f"{run.wrk.rps:.0f} (p99 {run.wrk.p99_ms:.1f} ms, {run.cpu_per_request_us:.0f} µs/req, load {run.load:.2f}, "
            f"{run.check(args.connections)})"
            for run in runs
        )
        print(f"{name:<9} req/s by round: {each}")
    if split:
        print("each server pinned to its own core; wrk and Redis share the other")


if __name__ == "__main__":
    main()
