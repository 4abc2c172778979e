"""Both transports of the hot command (REDIS_PIPE=fast|stock) keep the same promises against a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from redis import Redis
from redis.exceptions import ConnectionError, NoScriptError, RedisError

from receiver.app.redis_pipe.choice import open_pipe
from receiver.app.redis_pipe.command_pipe import CommandPipe
from receiver.app.redis_pipe.pipe import Pipe
from receiver.app.redis_pipe.stock_pipe import StockPipe
from tests.support.servers import wait_for
from workers.commands.settings import Settings

KINDS = pytest.mark.parametrize("kind", ["fast", "stock"])
# Only turns a call that never ends into a failure: nothing here passes or fails by how long a call took.
HANG_SECONDS = 60.0
T = TypeVar("T")


def run_with_pipe(redis_url: str, kind: str, body: Callable[[Pipe], Awaitable[T]]) -> T:
    async def run() -> T:
        pipe = open_pipe(Settings(redis_url=redis_url, redis_pipe=kind, spool_after_seconds=HANG_SECONDS))
        try:
            return await body(pipe)
        finally:
            await pipe.aclose()

    return asyncio.run(run())


async def outcome(call: asyncio.Future[list[Any]]) -> BaseException | list[Any]:
    done, _ = await asyncio.wait([call], timeout=HANG_SECONDS)
    assert done, f"the call had not ended after {HANG_SECONDS} s"
    return call.exception() or call.result()


async def blocked_in_redis(redis: Redis) -> int:
    """The id of the one client waiting in BLPOP, once Redis has it."""
    def blocked() -> list[int]:
        return [int(c["id"]) for c in redis.client_list() if c.get("cmd") == "blpop"]

    await asyncio.to_thread(wait_for, lambda: len(blocked()) == 1, timeout=HANG_SECONDS, what="the BLPOP to block")
    return blocked()[0]


@pytest.mark.parametrize(("kind", "kind_class"), [("fast", CommandPipe), ("stock", StockPipe)])
def test_the_setting_picks_the_transport(redis_url: str, kind: str, kind_class: type) -> None:
    assert isinstance(run_with_pipe(redis_url, kind, _identity), kind_class)


async def _identity(pipe: Pipe) -> Pipe:
    return pipe


@KINDS
def test_each_call_gets_its_own_replies_and_error_replies_keep_their_class(redis_url: str, kind: str) -> None:
    async def body(pipe: Pipe) -> list[Any]:
        calls = [pipe.send(("INCRBY", f"pipes:{n}", n), ("GET", f"pipes:{n}")) for n in range(1, 31)]
        calls.append(pipe.send(("EVALSHA", "0" * 40, 0)))  # a forgotten script
        calls.append(pipe.send(("EVALSHA", "0" * 40, 0), ("WAIT", 0, 100)))  # the enqueue's pair, failing
        calls.append(pipe.send(("EVAL", "return 7", 0), ("WAIT", 0, 100)))  # and succeeding
        return await asyncio.gather(*(outcome(call) for call in calls))

    replies = run_with_pipe(redis_url, kind, body)
    assert replies[:30] == [[n, str(n).encode()] for n in range(1, 31)]
    # redis-py's error classes, so the enqueuer can tell a forgotten script from other errors.
    assert isinstance(replies[30], NoScriptError) and isinstance(replies[31], NoScriptError)
    assert replies[32] == [7, 0]


@KINDS
def test_a_killed_connection_fails_what_is_in_flight_and_the_next_call_goes_through(
    redis_url: str, redis: Redis, kind: str
) -> None:
    async def body(pipe: Pipe) -> tuple[BaseException | list[Any], list[Any]]:
        blocked = pipe.send(("BLPOP", "pipes:never", 0))  # holds its connection until the kill
        redis.client_kill_filter(_id=await blocked_in_redis(redis))
        return await outcome(blocked), await pipe.send(("ECHO", "after"))

    lost, after = run_with_pipe(redis_url, kind, body)
    assert isinstance(lost, RedisError) and not isinstance(lost, NoScriptError)
    assert after == [b"after"]


@KINDS
def test_closing_fails_the_calls_still_out_with_connection_error(redis_url: str, redis: Redis, kind: str) -> None:
    async def run() -> BaseException | list[Any]:
        pipe = open_pipe(Settings(redis_url=redis_url, redis_pipe=kind, spool_after_seconds=HANG_SECONDS))
        assert await pipe.send(("ECHO", "connected")) == [b"connected"]
        blocked = pipe.send(("BLPOP", "pipes:never", 0))
        await blocked_in_redis(redis)
        await pipe.aclose()
        return await outcome(blocked)

    # ConnectionError is what the receiver spools on: a call cut short by shutdown is kept.
    assert isinstance(asyncio.run(run()), ConnectionError)
