"""How the receiver's Enqueuer coalesces concurrent events into script calls, against a real Redis."""

from __future__ import annotations

import asyncio

import pytest
from redis import Redis

from receiver.app.enqueue import BATCH_MAX, Enqueuer
from receiver.app.redis_pipe.choice import open_pipe
from receiver.app.redis_pipe.pipe import Pipe
from receiver.kernel.enqueue_script import EnqueueResult, Outcome
from receiver.kernel.events import RecordingEvent, Source, Status
from receiver.kernel.job_template import JobTemplate
from receiver.kernel.redis_client import async_redis
from workers.commands.settings import Settings

ACCOUNT = "AC" + "0" * 32
# Both transports keep the same promises; only how the bytes reach Redis differs.
PIPES = pytest.mark.parametrize("kind", ["fast", "stock"])


def pipe_of(kind: str, redis_url: str, bound: float) -> Pipe:
    return open_pipe(Settings(redis_url=redis_url, redis_pipe=kind, spool_after_seconds=bound))


def event(index: int) -> RecordingEvent:
    return RecordingEvent(Source.VOICE, "RE" + f"{index:032x}", Status.COMPLETED, ACCOUNT)


def script_calls(redis: Redis) -> int:
    stats = redis.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)) - int(stats.get("failed_calls", 0))


@PIPES
def test_one_turn_of_requests_goes_out_in_full_batches_and_each_gets_its_own_answer(redis_url: str, redis: Redis, kind: str) -> None:
    events = [event(i) for i in range(2 * BATCH_MAX + 5)]
    # Copies inside the same turn: the second of each pair must be the duplicate.
    submitted = events + events[:3]

    async def run() -> list[EnqueueResult]:
        client = async_redis(Settings(redis_url=redis_url))
        pipe = pipe_of(kind, redis_url, 10)
        enqueuer = Enqueuer(client, pipe, JobTemplate("recordings", 600, 3), 3600)
        await client.script_load(enqueuer._script.script)
        redis.config_resetstat()
        try:
            return await asyncio.gather(*(enqueuer.submit(e) for e in submitted))
        finally:
            await pipe.aclose()
            await client.aclose()

    results = asyncio.run(run())
    assert [r.job_id for r in results] == [f"rr-voice-{e.sid}-completed" for e in submitted]
    # Each copy and its original: one queued, one duplicate (which is which depends on the order
    # batches reach Redis: one connection keeps it, the stock pipe's several need not).
    outcomes = [r.outcome for r in results]
    assert outcomes[3:len(events)] == [Outcome.QUEUED] * (len(events) - 3)
    for index in range(3):
        assert {outcomes[index], outcomes[len(events) + index]} == {Outcome.QUEUED, Outcome.DUPLICATE}
    # Two batches filled and sent by the request that filled them, and the rest at the turn's end.
    assert script_calls(redis) == 3
    assert redis.llen("rq:queue:recordings") == len(events)


@PIPES
def test_a_request_that_stops_waiting_does_not_disturb_its_batch(redis_url: str, redis: Redis, kind: str) -> None:
    async def run() -> list[EnqueueResult | BaseException]:
        client = async_redis(Settings(redis_url=redis_url))
        pipe = pipe_of(kind, redis_url, 30)
        enqueuer = Enqueuer(client, pipe, JobTemplate("recordings", 600, 3), 3600, bound_seconds=30)
        tasks = [asyncio.create_task(enqueuer.submit(event(i))) for i in range(BATCH_MAX)]
        await asyncio.sleep(0)  # every task has submitted, and the full batch is written
        tasks[-1].cancel()
        # Only turns a hang into a failure: a batch left to its 30 s bound fails its callers with
        # TimeoutError, which the assertions below tell apart from a queued event.
        outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
        await pipe.aclose()
        await client.aclose()
        return outcomes

    outcomes = asyncio.run(run())
    assert isinstance(outcomes[-1], asyncio.CancelledError)
    assert all(isinstance(o, EnqueueResult) and o.outcome is Outcome.QUEUED for o in outcomes[:-1])
    # The script ran for the whole batch: the cancelled request's event is queued too (its
    # Twilio retry will be a duplicate), nothing waited out the 30 s bound.
    assert redis.llen("rq:queue:recordings") == BATCH_MAX


@PIPES
def test_redis_that_forgot_the_script_gets_it_again_and_the_batch_goes_through(redis_url: str, redis: Redis, kind: str) -> None:
    async def run() -> list[EnqueueResult]:
        client = async_redis(Settings(redis_url=redis_url))
        pipe = pipe_of(kind, redis_url, 10)
        enqueuer = Enqueuer(client, pipe, JobTemplate("recordings", 600, 3), 3600)
        first = await enqueuer.submit(event(0))
        redis.script_flush()
        rest = await asyncio.gather(*(enqueuer.submit(event(i)) for i in range(1, BATCH_MAX + 3)))
        await pipe.aclose()
        await client.aclose()
        return [first, *rest]

    results = asyncio.run(run())
    assert all(r.outcome is Outcome.QUEUED for r in results)
    assert redis.llen("rq:queue:recordings") == BATCH_MAX + 3
