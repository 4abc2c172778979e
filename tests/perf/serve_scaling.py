"""`recording-receiver serve --workers N` for N from 1 to the core count: throughput per N.

    python -m tests.perf.serve_scaling [--seconds 8] [--connections 64] [--rounds 3]

Each case is the real command on a free loopback port (uvicorn's supervisor, N receiver
processes sharing the port), driven by wrk (one thread) with distinct, correctly signed voice
callbacks, as `receiver_bench` does, against a real Redis. Nothing is pinned: the N processes,
wrk and Redis share every core, as they would on one machine. Cases take turns for --rounds
rounds; the table shows each case's median round, its throughput over N=1's, and the target
0.8·N. CPU % is the receiver processes' CPU time over wrk's sending time (100 % = one core).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from redis import Redis

from tests.perf.harness import ROOT, WrkResult, run_wrk
from tests.perf.receiver_bench import (
    ACCOUNT,
    PUBLIC,
    TOKEN,
    compacted,
    settled,
    write_bodies,
)
from tests.support.servers import RedisProcess, free_port, wait_for


@dataclass
class Row:
    processes: int
    wrk: WrkResult
    cpu: float
    rss_mb: float
    jobs: int


def _receivers(serve: psutil.Popen, port: int) -> list[psutil.Process]:
    """The processes under `serve` holding the listening socket (uvicorn's parent holds it too)."""
    found = []
    for child in serve.children(recursive=True):
        try:
            if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in child.net_connections("tcp")):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def _answers(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def start_serve(processes: int, env: dict[str, str]) -> tuple[psutil.Popen, str, list[psutil.Process]]:
    port = free_port()
    serve = psutil.Popen([sys.executable, "-m", "workers.commands.cli", "serve", "--workers", str(processes), "--port", str(port)],
                         env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: serve.poll() is not None or _answers(base), timeout=60, what="serve answering")
    if processes == 1:
        receivers = [serve]
    else:
        wait_for(lambda: len(_receivers(serve, port)) == processes, timeout=60, what=f"{processes} receiver processes")
        receivers = _receivers(serve, port)
    return serve, base, receivers


def stop_serve(serve: psutil.Popen) -> None:
    family = serve.children(recursive=True)
    serve.terminate()
    try:
        serve.wait(timeout=20)
    except psutil.TimeoutExpired:
        serve.kill()
    _, alive = psutil.wait_procs(family, timeout=10)
    for proc in alive:
        proc.kill()


def run_case(processes: int, env: dict[str, str], redis: Redis, bodies: Path, args: argparse.Namespace) -> Row:
    redis.flushall()
    serve, base, receivers = start_serve(processes, env)
    try:
        run_wrk(base, bodies, 2, args.connections, 1)  # warm-up, then start clean
        settled(redis)
        redis.flushall()
        compacted(redis)
        cpu0 = sum(sum(p.cpu_times()[:2]) for p in receivers)
        result = run_wrk(base, bodies, args.seconds, args.connections, 1)
        cpu = sum(sum(p.cpu_times()[:2]) for p in receivers) - cpu0
        rss = sum(p.memory_info().rss for p in receivers)
    finally:
        stop_serve(serve)
    return Row(processes, result, 100 * cpu / result.seconds, rss / 2**20, int(redis.llen("rq:queue:recordings")))  # type: ignore[arg-type]


def table(rows: list[Row]) -> str:
    one = rows[0].wrk.rps
    lines = [f"{psutil.cpu_count()} cores; wrk 1 thread, 64 connections; nothing pinned",
             f"{'--workers':>9}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU %':>8}{'RSS MB':>8}{'vs N=1':>8}{'target':>8}{'jobs':>9}"]
    for row in rows:
        w = row.wrk
        lines.append(f"{row.processes:>9}{w.rps:>10.0f}{w.p50_ms:>9.2f}{w.p99_ms:>9.2f}{row.cpu:>8.0f}{row.rss_mb:>8.0f}"
                     f"{w.rps / one:>7.2f}×{0.8 * row.processes:>7.1f}×{row.jobs:>9}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--bodies", type=int, default=400_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bodies = work / "bodies.tsv"
        write_bodies(bodies, args.bodies)
        redis_proc = RedisProcess(work / "redis")
        redis = redis_proc.client()
        env = {"REDIS_URL": redis_proc.url, "PUBLIC_BASE_URL": PUBLIC, "TWILIO_ACCOUNT_SID": ACCOUNT,
               "TWILIO_AUTH_TOKEN": TOKEN, "DATA_DIR": str(work / "data"), "LOG_FORMAT": "json"}
        counts = range(1, args.max_workers + 1)
        rounds: dict[int, list[Row]] = {n: [] for n in counts}
        try:
            for _ in range(args.rounds):
                for n in counts:
                    rounds[n].append(run_case(n, env, redis, bodies, args))
        finally:
            redis_proc.stop()
    rows = [sorted(runs, key=lambda r: r.wrk.rps)[len(runs) // 2] for runs in rounds.values()]
    print(table(rows))
    for n, runs in rounds.items():
        print(f"--workers {n}: req/s by round: " + ", ".join(f"{r.wrk.rps:.0f} (p99 {r.wrk.p99_ms:.1f} ms)" for r in runs))


if __name__ == "__main__":
    main()
