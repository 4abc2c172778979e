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

    def send(self, *commands: tuple[Any, ...]) -> asyncio.Future[list[Any]]:
        """Write `commands` back to back, now when connected, and return the future of their
        replies in order; an error reply fails it. No coroutine or task stands between the
        caller and the socket, so a request waiting on Redis is woken by the reply itself."""
        packed = b"".join(hiredis.pack_command(command) for command in commands)
        line = self._line
        if line is not None:
            return line.send(packed, len(commands))
        return asyncio.ensure_future(self._connect_and_send(packed, len(commands)))

    async def aclose(self) -> None:
        if self._line is not None:
            line, self._line = self._line, None
            line.fail(ConnectionError("pipe closed"))
            await line.conn.disconnect()

    async def _connect_and_send(self, packed: bytes, replies: int) -> list[Any]:
        async with self._connecting:
            if self._line is None:
                # No socket timeout: waiting for replies is bounded by the reader instead.
                kwargs = {**self._pool.connection_kwargs, "socket_timeout": None}
                conn: AbstractConnection = self._pool.connection_class(**kwargs)
                await conn.connect()  # type: ignore[no-untyped-call]
                self._line = _Line(conn, self._timeout, self._drop)
            line = self._line
        return await line.send(packed, replies)

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
        self._waiting: deque[tuple[asyncio.Future[list[Any]], int]] = deque()
        self._reading = False
        self._loop = asyncio.get_running_loop()  # once: each call is a getpid() system call
        # redis-py's StreamWriter: its write() takes the bytes at once (buffering them if the
        # socket is full), where redis-py's own send is a coroutine.
        writer = conn._writer
        if writer is None:
            raise ConnectionError("Redis connection is not open")
        self._writer: asyncio.StreamWriter = writer

    def send(self, packed: bytes, replies: int) -> asyncio.Future[list[Any]]:
        loop = self._loop
        future: asyncio.Future[list[Any]] = loop.create_future()
        if self.broken is not None:
            future.set_exception(ConnectionError("Redis connection lost"))
            return future
        self._waiting.append((future, replies))
        try:
            self._writer.write(packed)
        except Exception as exc:
            self._break(exc)
        if not self._reading and self.broken is None:
            self._reading = True
            loop.create_task(self._read())
        return future

    async def _read(self) -> None:
        try:
            while self._waiting:
                future, count = self._waiting[0]
                replies = [await self._reply() for _ in range(count)]
                self._waiting.popleft()
                if future.done():  # its caller stopped waiting
                    continue
                error = next((r for r in replies if isinstance(r, ResponseError)), None)
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(replies)
        except Exception as exc:  # timeout, reset, Redis gone: nothing in flight can be trusted
            self._break(exc)
        finally:
            self._reading = False

    async def _reply(self) -> Any:
        try:
            # Our own bound: redis-py's `timeout=` answers None on expiry, as for pub/sub.
            async with asyncio.timeout(self._timeout):
                return await self.conn.read_response()
        except ResponseError as exc:  # an error reply: that call fails, the connection is fine
            return exc

    def _break(self, exc: Exception) -> None:
        if self.broken is None:
            self.broken = exc
            self._on_broken(self)
            self._loop.create_task(self.conn.disconnect(nowait=True))
        self.fail(ConnectionError(f"Redis connection lost: {type(exc).__name__}"))

    def fail(self, error: Exception) -> None:
        waiting, self._waiting = self._waiting, deque()
        for future, _ in waiting:
            if not future.done():
                future.set_exception(error)
