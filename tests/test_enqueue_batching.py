"""How the receiver's Enqueuer coalesces concurrent events into script calls, against a real Redis."""

from __future__ import annotations

import asyncio
import time

from redis import Redis

from receiver.command_pipe import CommandPipe
from receiver.enqueue import BATCH_MAX, Enqueuer, EnqueueResult, Outcome
from receiver.events import RecordingEvent, Source, Status
from receiver.job_template import JobTemplate
from receiver.redis_client import async_redis
from receiver.settings import Settings

ACCOUNT = "AC" + "0" * 32


def event(index: int) -> RecordingEvent:
    return RecordingEvent(Source.VOICE, "RE" + f"{index:032x}", Status.COMPLETED, ACCOUNT)


def script_calls(redis: Redis) -> int:
    stats = redis.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)) - int(stats.get("failed_calls", 0))


def test_one_turn_of_requests_goes_out_in_full_batches_and_each_gets_its_own_answer(redis_url: str, redis: Redis) -> None:
    events = [event(i) for i in range(2 * BATCH_MAX + 5)]
    # Copies inside the same turn: the second of each pair must be the duplicate.
    submitted = events + events[:3]

    async def run() -> list[EnqueueResult]:
        client = async_redis(Settings(redis_url=redis_url))
        enqueuer = Enqueuer(client, CommandPipe(client.connection_pool, 10), JobTemplate("recordings", 600, 3), 3600)
        await client.script_load(enqueuer._script.script)
        redis.config_resetstat()
        try:
            return await asyncio.gather(*(enqueuer.submit(e) for e in submitted))
        finally:
            await client.aclose()

    results = asyncio.run(run())
    assert [r.job_id for r in results] == [f"rr-voice-{e.sid}-completed" for e in submitted]
    assert [r.outcome for r in results] == [Outcome.QUEUED] * len(events) + [Outcome.DUPLICATE] * 3
    # Two batches filled and sent by the request that filled them, and the rest at the turn's end.
    assert script_calls(redis) == 3
    assert redis.llen("rq:queue:recordings") == len(events)


def test_a_cancelled_sender_does_not_leave_its_batch_waiting_for_the_bound(redis_url: str) -> None:
    async def run() -> tuple[list[object], float]:
        client = async_redis(Settings(redis_url=redis_url))
        enqueuer = Enqueuer(client, CommandPipe(client.connection_pool, 30), JobTemplate("recordings", 600, 3), 3600, bound_seconds=30)
        tasks = [asyncio.create_task(enqueuer.submit(event(i))) for i in range(BATCH_MAX)]
        await asyncio.sleep(0)  # every task has submitted; the last one is now sending the batch
        started = time.monotonic()
        tasks[-1].cancel()
        outcomes = await asyncio.gather(*tasks[:-1], return_exceptions=True)
        await client.aclose()
        return outcomes, time.monotonic() - started

    outcomes, waited = asyncio.run(run())
    # Each either made it (Redis answered before the cancel landed) or learns at once that it
    # did not, so its request can spool; none waits out the 30 s bound.
    assert all(isinstance(o, (EnqueueResult, TimeoutError)) for o in outcomes)
    assert waited < 5
