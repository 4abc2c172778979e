"""Console benchmark: median answer times of the recordings list at 10 and 100,000 recordings, and of the failures page.

    python -m tests.perf.console_bench [--recordings 100000] [--failed 3000] [--runs 15] [--budget-ms 200]

Its own redis-server and console (under uvicorn, in this process) on free loopback ports. The
catalog is seeded the way the receiver and workers leave it (tests/support/console/helpers.py); every
page is asked for `--runs` times after one warm-up request and the table shows the medians.
Exits 1 when a median is over `--budget-ms`. The test suite checks the property behind these
numbers without a clock: tests/unit/console/test_console_cost.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from pydantic import SecretStr

from console.app import create_app
from tests.support.console.helpers import PASSWORD, SECRET_KEY, TOKEN, USER, fail_job, seed, sid, sign_in
from tests.support.servers import RedisProcess, serve_app
from workers.commands.settings import Settings

ACCOUNT = "AC" + "0123456789abcdef" * 2
REASONS = ["permanent: Twilio answered 403 (code 20403): Forbidden", "transient: network: ReadTimeout",
           "transient: media cut short: {n} of 99999 bytes"]


def median_seconds(client: httpx.Client, path: str, runs: int) -> float:
    client.get(path)  # warm: templates compiled, connections open
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        timings.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}: {response.text[:300]}")
    return statistics.median(timings)


def measure(client: httpx.Client, paths: dict[str, str], runs: int) -> dict[str, float]:
    return {name: median_seconds(client, path, runs) for name, path in paths.items()}


def recordings_pages(client: httpx.Client, count: int) -> dict[str, str]:
    """The list's pages worth timing; the deep one about the middle of the index."""
    cursor = client.get("/api/recordings?limit=200").json()["next_cursor"]
    for _ in range(max(0, count // 400 - 1)):
        if not cursor:
            break
        cursor = client.get(f"/api/recordings?limit=200&cursor={cursor}").json()["next_cursor"]
    return {
        "html": "/recordings",
        "json": "/api/recordings",
        "html, page ~half way": f"/recordings?cursor={cursor}" if cursor else "/recordings",
        "json, 200 per page": "/api/recordings?limit=200",
        "html, status=absent": "/recordings?status=absent",
        "html, source+status": "/recordings?source=voice&status=completed",
        "html, source+status+date": "/recordings?source=voice&status=absent&from=2000-01-01",
        "html, search CallSid": f"/recordings?q={sid('CA', count // 2 + 1)}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recordings", type=int, default=100_000)
    parser.add_argument("--failed", type=int, default=3_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--budget-ms", type=float, default=200.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        redis_proc = RedisProcess(work / "redis")
        redis = redis_proc.client()
        settings = Settings(
            redis_url=redis_proc.url, twilio_account_sid=ACCOUNT, data_dir=work / "data", log_format="json",
            admin_username=USER, admin_password=SecretStr(PASSWORD), admin_token=SecretStr(TOKEN),
            admin_secret_key=SecretStr(SECRET_KEY),
        )
        try:
            with serve_app(create_app(settings)) as base:
                client = sign_in(base)
                seed(redis, 10)
                small = measure(client, recordings_pages(client, 10), args.runs)
                redis.flushall()
                started = time.perf_counter()
                seed(redis, args.recordings, timeline=False)
                seeded_in = time.perf_counter() - started
                big = measure(client, recordings_pages(client, args.recordings), args.runs)

                redis.flushall()
                for n in range(args.failed):
                    fail_job(redis, sid("RE", n), REASONS[n % 3].format(n=n))
                started = time.perf_counter()
                client.get("/api/failures").raise_for_status()
                cold = time.perf_counter() - started
                failures = measure(client, {"html": "/failures", "json": "/api/failures"}, args.runs)
        finally:
            redis_proc.stop()

    print(f"seeded {args.recordings:,} recordings in {seeded_in:.1f} s; median of {args.runs} requests each:")
    for name in big:
        before = f"10 recordings: {small[name] * 1000:6.1f} ms" if name in small else ""
        print(f"  {name:28s} {before:26s}{args.recordings:,}: {big[name] * 1000:6.1f} ms")
    print(f"{args.failed:,} failed jobs in 3 causes: first read {cold * 1000:.0f} ms, then html "
          f"{failures['html'] * 1000:.1f} ms, json {failures['json'] * 1000:.1f} ms")
    over = {name: round(t * 1000, 1) for name, t in {**big, **{f"failures {k}": v for k, v in failures.items()}}.items()
            if t >= args.budget_ms / 1000}
    if over:
        print(f"over {args.budget_ms:.0f} ms: {over}")
        sys.exit(1)


if __name__ == "__main__":
    main()
