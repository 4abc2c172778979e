"""Counters survive bursts and Redis outages: increments are batched, given back on failure, bounded, never lost silently."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis import Redis

from receiver.app.counters import Counters
from receiver.kernel import stats
from receiver.kernel.pending_counts import PendingCounts
from tests.conftest import Receiver
from tests.support.readme import ROOT
from tests.support.servers import RedisProcess, wait_for_count
from tests.unit.receiver.app.test_hostile_input import raw_request
from workers.commands.settings import Settings
from workers.jobs.job_stats import JobStats
from workers.twilio_rest.kinds import RestCall

DISCONNECTED = stats.callback_field("voice", "-", "client_disconnected")


def test_a_burst_of_3000_clients_leaving_mid_body_is_counted_exactly(
    make_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], redis: Redis,
) -> None:
    receiver = start_receiver(make_settings())
    # All of them hold a connection with half a body, then all leave at once.
    socks = [raw_request(receiver, 500, b"AccountSid=AC") for _ in range(3000)]
    for sock in socks:
        sock.close()
    counted = wait_for_count(lambda: int(redis.hget(stats.CALLBACKS, DISCONNECTED) or 0), 3000,
                             what="disconnects counted in Redis")
    assert counted == 3000
    assert redis.hget(stats.COUNTER_DROPS, "receiver") is None


def test_counts_taken_while_redis_is_down_are_written_when_it_is_back(own_redis: RedisProcess) -> None:
    async def scenario() -> tuple[bool, bool]:
        client = aioredis.Redis.from_url(own_redis.url, socket_timeout=2, socket_connect_timeout=2)
        counters = Counters(client, name="host-a:1")
        for _ in range(100):
            await counters.count("voice", "rejected_signature", "signature mismatch")
        own_redis.stop()
        failed = await counters.flush()
        for _ in range(50):
            await counters.count("voice", "rejected_signature", "signature mismatch")
        own_redis.start()
        written = await counters.flush()
        await client.aclose()
        return failed, written

    failed, written = asyncio.run(scenario())
    assert (failed, written) == (False, True)
    redis = own_redis.client()
    assert redis.hget(stats.CALLBACKS, "voice|-|rejected_signature") == b"150"
    assert redis.hget(stats.SIGNATURE_FAILURES, "signature mismatch") == b"150"
    minute = stats.minute("callbacks", time.time())
    assert 0 < redis.ttl(minute) <= stats.MINUTE_TTL_SECONDS
    assert redis.zscore(stats.RECEIVERS_SEEN, "host-a:1") is not None


def test_a_receiver_gone_for_an_hour_is_forgotten_with_its_spool_entry(own_redis: RedisProcess) -> None:
    redis = own_redis.client()
    redis.zadd(stats.RECEIVERS_SEEN, {"host-a:1": time.time() - 3700, "host-a:2": time.time() - 60})
    redis.hset(stats.SPOOL, mapping={"host-a:1": 3, "host-a:2": 0})

    async def flush() -> bool:
        client = aioredis.Redis.from_url(own_redis.url)
        counters = Counters(client, name="host-a:3")

        async def depth() -> int:
            return 7

        counters.report_spool(depth)
        written = await counters.flush()
        await client.aclose()
        return written

    assert asyncio.run(flush())
    assert set(redis.zrange(stats.RECEIVERS_SEEN, 0, -1)) == {b"host-a:2", b"host-a:3"}
    assert redis.hgetall(stats.SPOOL) == {b"host-a:2": b"0", b"host-a:3": b"7"}


def test_full_pending_counters_keep_counting_their_fields_and_count_what_they_refuse() -> None:
    pending = PendingCounts("receiver", max_fields=2)
    for _ in range(5):
        pending.add("k", "a")
        pending.add("k", "b")
        pending.add("k", "c")  # a third field: refused
    pending.observe("h", "voice", 0.3)  # its bucket is refused (1 count) and its sum (not a count) too
    assert pending.dropped_since_asked() == 6 and pending.dropped_since_asked() == 0
    batch = pending.take()
    assert batch.increments == {("k", "a"): 5, ("k", "b"): 5, (stats.COUNTER_DROPS, "receiver"): 6}
    pending.add("k", "a")
    pending.give_back(batch)  # a failed write: merged with what came since
    assert pending.take().increments[("k", "a")] == 6


def test_a_drop_is_a_warning_with_its_count_and_a_counted_metric(own_redis: RedisProcess) -> None:
    # A process of its own, so the log line is read as an operator would read it.
    code = (
        "import asyncio, redis.asyncio as r\n"
        "from receiver.kernel import logs\n"
        "from receiver.app.counters import Counters\n"
        "logs.configure('INFO', 'json')\n"
        "async def main():\n"
        f"    c = Counters(r.Redis.from_url({own_redis.url!r}), name='host-b:2', max_fields=4)\n"
        "    for verdict in ('a', 'b', 'c', 'd', 'e'):\n"
        "        await c.count('voice', verdict)\n"
        "    assert await c.flush()\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    warnings = [line for line in lines if line["level"] == "warning"]
    # 5 verdicts x (total + minute bucket) = 10 fields for 4 places: 6 counts refused.
    assert [(w["event"].split(":")[0], w["count"]) for w in warnings] == [("counter increments dropped", 6)]
    assert own_redis.client().hget(stats.COUNTER_DROPS, "receiver") == b"6"


def test_counts_redis_never_took_are_a_warning_at_shutdown(own_redis: RedisProcess) -> None:
    url = own_redis.url
    own_redis.stop()
    code = (
        "import asyncio, redis.asyncio as r\n"
        "from receiver.kernel import logs\n"
        "from receiver.app.counters import Counters\n"
        "logs.configure('INFO', 'json')\n"
        "async def main():\n"
        f"    c = Counters(r.Redis.from_url({url!r}, socket_connect_timeout=2), name='host-c:3')\n"
        "    for _ in range(3):\n"
        "        await c.count('voice', 'ignored')\n"
        "    await c.close()\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    # Each callback counts in the total and in its minute: 3 callbacks, 6 increments.
    assert [(w["event"].split(":")[0], w["count"]) for w in lines if w["level"] == "warning"] == [
        ("counter increments dropped at shutdown", 6)]


def test_worker_counts_survive_a_failed_write(own_redis: RedisProcess) -> None:
    writer = Redis.from_url(own_redis.url, socket_timeout=2, socket_connect_timeout=2)
    job_stats = JobStats(writer)
    job_stats.job("voice", "done", 0.2)
    own_redis.stop()
    job_stats.job("voice", "done", 0.3)  # not written, not lost
    job_stats.twilio_call(RestCall("GET", "http://mock/2010-04-01/Accounts/AC1/Recordings/RE1.json", 429, 0.04))
    own_redis.start()
    job_stats.job("video", "done", 1.5)
    redis = own_redis.client()
    assert redis.hget(stats.JOBS, "voice|done") == b"2"
    assert redis.hget(stats.JOB_SECONDS, "voice|done|0.25") == b"1" and redis.hget(stats.JOB_SECONDS, "voice|done|0.5") == b"1"
    assert redis.hget(stats.TWILIO_REST_SECONDS, "voice|metadata|429|0.05") == b"1"
    assert redis.hget(stats.TWILIO_RESPONSES, "429") == b"1"
    writer.close()
