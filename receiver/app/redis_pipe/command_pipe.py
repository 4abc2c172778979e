"""One pipelined Redis connection for the receiver's hot command: each call written at once, replies matched in order."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import hiredis
from hiredis import PushNotification
from redis._parsers import BaseParser  # redis-py's error reply classes (NOSCRIPT, READONLY, ...)
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import ConnectionError, InvalidResponse, ResponseError


class CommandPipe:
    """redis-py's asyncio client checks a connection out of its pool for every command, wraps the
    write in a task (`wait_for`) and keeps the connection until the reply is read. On the hot path
    that machinery cost more than Redis did (profiled: ~100 µs of CPU per call on this machine).

    Here calls share one connection: each is written to the socket the moment it is made, so
    Redis starts on it while this process goes on with the next requests, and the socket's read
    callback hands the replies back in order. redis-py still does the connecting (TLS, AUTH,
    SELECT, Sentinel's master lookup) and names the error replies; a broken or silent connection
    fails every call in flight with ConnectionError, and the next call connects again.
    """

    def __init__(
        self, pool: ConnectionPool, reply_timeout: float, on_close: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self._pool = pool
        self._on_close = on_close  # whoever made the pool closes what else it holds (Sentinel's clients)
        self._timeout = reply_timeout
        self._line: _Line | None = None
        self._connecting = asyncio.Lock()
        self._connects: set[asyncio.Future[list[Any]]] = set()  # calls waiting for a connection

    def send(self, *commands: tuple[Any, ...]) -> asyncio.Future[list[Any]]:
        """Write `commands` back to back, now when connected, and return the future of their
        replies in order; an error reply fails it. No coroutine or task stands between the
        caller and the socket, so a request waiting on Redis is woken by the reply itself."""
        packed = b"".join(hiredis.pack_command(command) for command in commands)
        line = self._line
        if line is not None:
            return line.send(packed, len(commands))
        waiting = asyncio.ensure_future(self._connect_and_send(packed, len(commands)))
        self._connects.add(waiting)
        waiting.add_done_callback(self._connects.discard)
        return waiting

    async def aclose(self) -> None:
        # A connect still under way is ended too, not left pending for the closing loop to destroy.
        for waiting in list(self._connects):
            waiting.cancel()
        await asyncio.gather(*self._connects, return_exceptions=True)
        if self._line is not None:
            line, self._line = self._line, None
            line.fail(ConnectionError("pipe closed"))
            await line.conn.disconnect()
        if self._on_close is not None:
            await self._on_close()

    async def _connect_and_send(self, packed: bytes, replies: int) -> list[Any]:
        async with self._connecting:
            if self._line is None:
                # No socket timeout: waiting for replies is bounded by the line's watchdog instead.
                # RESP2: replies are matched to calls by count, and RESP3 (redis-py 8's default)
                # lets a server send push frames no call asked for (tracking invalidations,
                # maintenance notices). The line also skips any that come anyway.
                kwargs = {**self._pool.connection_kwargs, "socket_timeout": None, "protocol": 2}
                conn: AbstractConnection = self._pool.connection_class(**kwargs)
                try:
                    # Bounded too: with no socket timeout, a server that accepts and never
                    # answers the handshake would hold the lock, and every call behind it, for good.
                    await asyncio.wait_for(conn.connect(), self._timeout)  # type: ignore[no-untyped-call]
                except (Exception, asyncio.CancelledError):
                    await conn.disconnect(nowait=True)
                    raise
                self._line = _Line(conn, self._timeout, self._drop)
            line = self._line
        return await line.send(packed, replies)

    def _drop(self, line: _Line) -> None:
        if self._line is line:
            self._line = None


class _Line(asyncio.Protocol):
    """One connection and the calls in flight on it, in the order they were written.

    Once redis-py has connected, the socket's protocol is swapped for this one: each chunk Redis
    sends is parsed (hiredis, with redis-py's error classes) and settles its calls right there,
    in the loop's read callback. A reader task in its place cost a task step per reply, a timer
    per reply for the bound, and redis-py's Python-level reading (profiled under load), and every
    answer waited one more turn of the event loop for it.
    """

    def __init__(self, conn: AbstractConnection, timeout: float, on_broken: Callable[[_Line], None]) -> None:
        self.conn = conn
        self.broken: Exception | None = None
        self._timeout = timeout
        self._on_broken = on_broken
        self._waiting: deque[tuple[asyncio.Future[list[Any]], int]] = deque()
        self._replies: list[Any] = []
        self._answered = 0  # calls answered so far: the watchdog's sign of life
        self._watchdog: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()  # once: each call is a getpid() system call
        self._parser = hiredis.Reader(protocolError=InvalidResponse, replyError=BaseParser.parse_error)
        writer = conn._writer
        if writer is None:
            raise ConnectionError("Redis connection is not open")
        self._transport = writer.transport
        # redis-py's stream protocol still hears of the close, so its writer's wait_closed() returns.
        self._streams: asyncio.BaseProtocol = self._transport.get_protocol()
        self._transport.set_protocol(self)

    def send(self, packed: bytes, replies: int) -> asyncio.Future[list[Any]]:
        future: asyncio.Future[list[Any]] = self._loop.create_future()
        if self.broken is not None:
            future.set_exception(ConnectionError("Redis connection lost"))
            return future
        self._waiting.append((future, replies))
        if self._watchdog is None:
            self._watchdog = self._loop.call_later(self._timeout, self._check, self._answered)
        try:
            self._transport.write(packed)
        except Exception as exc:
            self._break(exc)
        return future

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        parser.feed(data)
        try:
            while (reply := parser.gets()) is not False:
                if type(reply) is PushNotification:  # out of band: the reply of no call
                    continue
                self._replies.append(reply)
                future, count = self._waiting[0]  # IndexError: a reply nobody asked for
                if len(self._replies) < count:
                    continue
                replies, self._replies = self._replies, []
                self._waiting.popleft()
                self._answered += 1
                if future.done():  # its caller stopped waiting
                    continue
                error = next((r for r in replies if isinstance(r, ResponseError)), None)
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(replies)
        except Exception as exc:  # garbled or unexpected replies: nothing in flight can be trusted
            self._break(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._break(exc or ConnectionError("Redis closed the connection"))
        self._streams.connection_lost(exc)

    def _check(self, answered_before: int) -> None:
        """Every `timeout` seconds while calls wait: a line that answered none of them in that
        time is taken for dead (one timer per period, not one per call)."""
        self._watchdog = None
        if not self._waiting or self.broken is not None:
            return
        if self._answered == answered_before:
            self._break(TimeoutError("Redis did not answer in time"))
            return
        self._watchdog = self._loop.call_later(self._timeout, self._check, self._answered)

    def _break(self, exc: Exception) -> None:
        if self.broken is None:
            self.broken = exc
            self._on_broken(self)
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None
            self._loop.create_task(self.conn.disconnect(nowait=True))
        self.fail(ConnectionError(f"Redis connection lost: {type(exc).__name__}"))

    def fail(self, error: Exception) -> None:
        waiting, self._waiting = self._waiting, deque()
        self._replies = []
        for future, _ in waiting:
            if not future.done():
                future.set_exception(error)
