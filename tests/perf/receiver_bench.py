"""Receiver benchmark: bare no-op endpoint vs the tutorial receiver vs ours, one table, one run.

    python -m tests.perf.receiver_bench [--seconds 10] [--connections 64]

Every case runs in one uvicorn process with the same settings on a free loopback port, driven by
wrk cycling through distinct, correctly signed voice callbacks; the table ends with the check
that every 2xx became exactly one queued job.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil
from redis import Redis

from tests.perf.harness import Sampler, WrkResult, run_wrk, start_uvicorn, stop
from tests.servers import RedisProcess
from tests.twilio_signing import sign
from workers.simulate import new_sid

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


def run_case(name: str, target: str, factory: bool, env: dict[str, str], redis: Redis, bodies: Path, seconds: int, connections: int, threads: int) -> Row:
    redis.flushall()
    server = start_uvicorn(target, env, factory=factory)
    try:
        run_wrk(server.base_url, bodies, 2, connections, threads)  # warm-up, then start clean
        redis.flushall()
        with Sampler(server.proc.pid) as sampler:
            result = run_wrk(server.base_url, bodies, seconds, connections, threads)
    finally:
        stop(server)
    jobs = int(redis.llen("rq:queue:recordings")) if name != "bare" else None  # type: ignore[arg-type]
    return Row(name, result, sampler.cpu_percent, sampler.peak_rss / 2**20, jobs)


def table(rows: list[Row]) -> str:
    bare, tutorial = rows[0].wrk.rps, rows[1].wrk.rps
    lines = [
        f"machine: {platform.processor() or platform.machine()}, {psutil.cpu_count()} cores, Python {platform.python_version()}",
        f"{'case':<10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU %':>8}{'RSS MB':>8}{'vs bare':>9}{'vs tut.':>9}{'2xx':>9}{'jobs':>9}{'check':>8}",
    ]
    for row in rows:
        w = row.wrk
        ok_2xx = w.requests - w.non_2xx - w.errors
        check = "-" if row.jobs is None else ("ok" if row.jobs == ok_2xx else "MISMATCH")
        lines.append(
            f"{row.name:<10}{w.rps:>10.0f}{w.p50_ms:>9.2f}{w.p99_ms:>9.2f}{row.cpu:>8.0f}{row.rss_mb:>8.0f}"
            f"{w.rps / bare:>8.0%}{w.rps / tutorial:>8.1f}x{ok_2xx:>9}{row.jobs if row.jobs is not None else '-':>9}{check:>8}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--bodies", type=int, default=400_000)
    # One wrk thread leaves the second core to the server and Redis; the same for every case.
    parser.add_argument("--wrk-threads", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bodies = work / "bodies.tsv"
        write_bodies(bodies, args.bodies)
        redis_proc = RedisProcess(work / "redis")
        redis = redis_proc.client()
        env = {"REDIS_URL": redis_proc.url, "PUBLIC_BASE_URL": PUBLIC, "TWILIO_ACCOUNT_SID": ACCOUNT,
               "TWILIO_AUTH_TOKEN": TOKEN, "DATA_DIR": str(work / "data"), "LOG_FORMAT": "json"}
        try:
            rows = [
                run_case("bare", "tests.perf.apps:bare_app", True, env, redis, bodies, args.seconds, args.connections, args.wrk_threads),
                run_case("tutorial", "tests.perf.apps:tutorial_app", True, env, redis, bodies, args.seconds, args.connections, args.wrk_threads),
                run_case("ours", "receiver.app:create_app", True, env, redis, bodies, args.seconds, args.connections, args.wrk_threads),
            ]
        finally:
            redis_proc.stop()
    print(table(rows))


if __name__ == "__main__":
    main()
