"""The receiver's hot command through plain redis-py asyncio: slower than the fast pipe, no library internals."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio
from redis.exceptions import ConnectionError

from receiver.kernel.redis_client import aclose


class StockPipe:
    """The same promise as CommandPipe, kept by redis-py's public client: one command goes out as
    `execute_command`, several (EVALSHA then WAIT) as one non-transactional pipeline, so they
    share a connection. What it costs is a task and a pooled connection per call."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client
        self._calls: dict[asyncio.Task[list[Any]], asyncio.Future[list[Any]]] = {}

    def send(self, *commands: tuple[Any, ...]) -> asyncio.Future[list[Any]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        task = loop.create_task(self._run(commands))
        self._calls[task] = future
        task.add_done_callback(self._settle)
        return future

    async def aclose(self) -> None:
        # Calls still out fail like the fast pipe's: with ConnectionError, so they are spooled.
        for task in list(self._calls):
            task.cancel()
        await asyncio.gather(*self._calls, return_exceptions=True)
        await aclose(self._client)  # and, behind Sentinel, its clients of the sentinels

    async def _run(self, commands: tuple[tuple[Any, ...], ...]) -> list[Any]:
        if len(commands) == 1:
            return [await self._client.execute_command(*commands[0])]  # type: ignore[no-untyped-call]
        async with self._client.pipeline(transaction=False) as pipeline:
            for command in commands:
                pipeline.execute_command(*command)  # type: ignore[no-untyped-call]
            return list(await pipeline.execute())

    def _settle(self, task: asyncio.Task[list[Any]]) -> None:
        future = self._calls.pop(task)
        if future.done():  # its caller stopped waiting
            return
        if task.cancelled():
            future.set_exception(ConnectionError("pipe closed"))
        elif (error := task.exception()) is not None:
            future.set_exception(error)
        else:
            future.set_result(task.result())
