"""One pipelined Redis connection for the receiver's hot command: each call written at once, replies matched in order."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Callable

import hiredis
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import ConnectionError, ResponseError


class CommandPipe:
    """redis-py's asyncio client checks a connection out of its pool for every command, wraps the
    write in a task (`wait_for`) and keeps the connection until the reply is read. On the hot path
    that machinery cost more than Redis did (profiled: ~100 µs of CPU per call on this machine).

    Here calls share one connection: each is written to the socket the moment it is made, so
    Redis starts on it while this process goes on with the next requests, and one reader hands
    the replies back in order. redis-py still does the connecting (TLS, AUTH, SELECT, Sentinel's
    master lookup) and the reply parsing; a broken connection fails every call in flight with
    ConnectionError, and the next call connects again.
    """

    def __init__(self, pool: ConnectionPool, reply_timeout: float) -> None:
        self._pool = pool
        self._timeout = reply_timeout
        self._line: _Line | None = None
        self._connecting = asyncio.Lock()

    async def execute(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Send `commands` back to back and return their replies; an error reply raises."""
        line = self._line or await self._connect()
        futures = await line.send(b"".join(hiredis.pack_command(command) for command in commands), len(commands))
        if len(futures) == 1:
            return [await futures[0]]
        return list(await asyncio.gather(*futures))

    async def aclose(self) -> None:
        if self._line is not None:
            line, self._line = self._line, None
            line.fail(ConnectionError("pipe closed"))
            await line.conn.disconnect()

    async def _connect(self) -> _Line:
        async with self._connecting:
            if self._line is None:
                # No socket timeout: redis-py then writes at once instead of in a task of its
                # own; waiting for replies is bounded by the reader instead.
                kwargs = {**self._pool.connection_kwargs, "socket_timeout": None}
                conn: AbstractConnection = self._pool.connection_class(**kwargs)
                await conn.connect()  # type: ignore[no-untyped-call]
                self._line = _Line(conn, self._timeout, self._drop)
            return self._line

    def _drop(self, line: _Line) -> None:
        if self._line is line:
            self._line = None


class _Line:
    """One connection and the calls in flight on it, in the order they were written."""

    def __init__(self, conn: AbstractConnection, timeout: float, on_broken: Callable[[_Line], None]) -> None:
        self.conn = conn
        self.broken: Exception | None = None
        self._timeout = timeout
        self._on_broken = on_broken
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._reading = False

    async def send(self, packed: bytes, replies: int) -> list[asyncio.Future[Any]]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(replies)]
        if self.broken is not None:
            for future in futures:
                future.set_exception(ConnectionError("Redis connection lost"))
            return futures
        self._waiting.extend(futures)
        try:
            # Written before this returns to the event loop (the connection has no socket
            # timeout, so redis-py does not hand the write to a task); the futures were queued
            # first, so replies and callers pair up in the order the bytes went out.
            await self.conn.send_packed_command(packed, check_health=False)
        except Exception as exc:
            self._break(exc)
        if not self._reading and self.broken is None:
            self._reading = True
            loop.create_task(self._read())
        return futures

    async def _read(self) -> None:
        try:
            while self._waiting:
                try:
                    # Our own bound: redis-py's `timeout=` answers None on expiry, as for pub/sub.
                    async with asyncio.timeout(self._timeout):
                        reply: Any = await self.conn.read_response()
                except ResponseError as exc:  # an error reply: that call fails, the connection is fine
                    reply = exc
                future = self._waiting.popleft()
                if future.done():
                    continue
                if isinstance(reply, ResponseError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except Exception as exc:  # timeout, reset, Redis gone: nothing in flight can be trusted
            self._break(exc)
        finally:
            self._reading = False

    def _break(self, exc: Exception) -> None:
        if self.broken is None:
            self.broken = exc
            self._on_broken(self)
            asyncio.get_running_loop().create_task(self.conn.disconnect(nowait=True))
        self.fail(ConnectionError(f"Redis connection lost: {type(exc).__name__}"))

    def fail(self, error: Exception) -> None:
        waiting, self._waiting = self._waiting, deque()
        for future in waiting:
            if not future.done():
                future.set_exception(error)
