"""The console's pages do the same Redis work with 100,000 recordings or 3,000 failed jobs as with a few.

What makes a page slow at that size is work that grows with the catalog: more commands, longer
replies. That is what these count, through a relay in front of Redis; wall-clock timings on a
shared machine belong to the benchmark, `python -m tests.perf.console_bench`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from redis import Redis

from tests.support.console.helpers import fail_job, seed, sid, sign_in
from tests.support.redis_meter import RedisMeter, Usage
from tests.support.servers import RedisProcess
from workers.commands.settings import Settings

SMALL = 5_000  # enough that every page and every batch the list reads is full, as at 100,000
BIG = 100_000


@pytest.fixture
def big_redis(own_redis: RedisProcess) -> Redis:
    return own_redis.client()


@pytest.fixture
def meter(own_redis: RedisProcess) -> Iterator[RedisMeter]:
    """Set up before the console (so torn down after it): the console's only way to Redis."""
    with RedisMeter(own_redis.port, password=urlsplit(own_redis.url).password) as relay:
        yield relay


def _usage(meter: RedisMeter, client: httpx.Client, path: str) -> Usage:
    response, usage = meter.measure(lambda: client.get(path))
    assert response.status_code == 200, (path, response.text[:300])
    return usage


def _pages(client: httpx.Client, deep: str, call: str) -> dict[str, str]:
    cursor = client.get(f"/api/recordings?limit=200&cursor={deep}").json()["next_cursor"]
    return {
        "html": "/recordings",
        "json": "/api/recordings",
        "html, a deep page": f"/recordings?cursor={cursor}",
        "json, 200 per page": "/api/recordings?limit=200",
        "html, status=absent": "/recordings?status=absent",
        "html, source+status": "/recordings?source=voice&status=completed",
        "html, source+status+date": "/recordings?source=voice&status=absent&from=2000-01-01",
        "html, search CallSid": f"/recordings?q={call}",
    }


def _walk(client: httpx.Client, pages: int) -> str:
    """The cursor `pages` pages of 200 down the list."""
    cursor = client.get("/api/recordings?limit=200").json()["next_cursor"]
    for _ in range(pages - 1):
        cursor = client.get(f"/api/recordings?limit=200&cursor={cursor}").json()["next_cursor"]
    return str(cursor)


@pytest.mark.slow
def test_recordings_pages_do_the_same_redis_work_with_100k_recordings(
    meter: RedisMeter, console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], big_redis: Redis,
) -> None:
    console = start_console(console_settings(redis_url=meter.url))
    client = sign_in(console)
    seed(big_redis, SMALL)
    small = {name: _usage(meter, client, path) for name, path in _pages(client, _walk(client, 2), sid("CA", 4_321)).items()}
    big_redis.flushall()
    client = sign_in(console)  # the flush ended the session, which lives in Redis
    seed(big_redis, BIG, timeline=False)
    # About the middle of the index: a page there must not cost what it took to get there.
    big = {name: _usage(meter, client, path) for name, path in _pages(client, _walk(client, 200), sid("CA", 54_321)).items()}

    assert f"{BIG:,} recording(s)" in client.get("/recordings").text
    for name, used in small.items():
        print(f"{name:28s} {SMALL:,}: {used.total:4d} commands, {used.reply_bytes:7,d} B   "
              f"{BIG:,}: {big[name].total:4d} commands, {big[name].reply_bytes:7,d} B")
    assert {name: big[name].commands for name in big} == {name: small[name].commands for name in small}
    for name, used in small.items():
        # The same number of entries is read either way; their values differ in length by a digit
        # or so (a count, a timestamp's decimals), where work that grew with the index would be ~20x.
        assert abs(big[name].reply_bytes - used.reply_bytes) <= used.reply_bytes // 50, (name, used, big[name])


@pytest.mark.slow
def test_failures_page_reads_each_failed_job_once_then_only_the_list(
    meter: RedisMeter, console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], big_redis: Redis,
) -> None:
    reasons = ["permanent: Twilio answered 403 (code 20403): Forbidden", "transient: network: ReadTimeout",
               "transient: media cut short: {n} of 99999 bytes"]

    def fail(first: int, last: int) -> None:
        for n in range(first, last):
            fail_job(big_redis, sid("RE", n), reasons[n % 3].format(n=n))

    client = sign_in(start_console(console_settings(redis_url=meter.url)))
    fail(0, 3)
    _usage(meter, client, "/api/failures")
    few = {path: _usage(meter, client, path) for path in ("/api/failures", "/failures")}

    fail(3, 3_000)
    first, cold = meter.measure(lambda: client.get("/api/failures").json())
    assert [g["count"] for g in first["groups"]] == [1_000, 1_000, 1_000]
    # Each job not read before is read once, its result and its fields in one pipeline ...
    assert (cold.commands["XREVRANGE"], cold.commands["HMGET"]) == (2_997, 2_997)
    many = {path: _usage(meter, client, path) for path in ("/api/failures", "/failures")}
    for path, usage in many.items():
        print(f"{path:14s} 3 failed: {few[path].total} commands; 3,000 failed: {usage.total} commands, {usage.reply_bytes:,} B")
    # ... and from then on a page costs the list of ids, not a command per failed job.
    assert {path: usage.commands for path, usage in many.items()} == {path: usage.commands for path, usage in few.items()}
