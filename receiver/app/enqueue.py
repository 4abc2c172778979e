"""The receiver's enqueue: concurrent callbacks coalesced into batches, each one call of the shared script."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError

from receiver.app.redis_pipe.pipe import Pipe
from receiver.kernel.enqueue_script import Call, EnqueueResult, build_call, results_of, script_source
from receiver.kernel.errors import RecordingReceiverError
from receiver.kernel.events import RecordingEvent
from receiver.kernel.job_template import JobTemplate


class NotReplicated(RecordingReceiverError, RedisError):
    """Fewer replicas than required confirmed a batch in time: it may die with a failover."""


# A batch is sent as soon as it has this many events, by the request that filled it, instead of
# at the end of the event loop's turn: Redis then works on the first events while this process
# parses the next ones, rather than both taking turns (measured: at 64 connections every turn
# gathered all 64 requests, and the process sat idle for the ~2 ms Redis took to run them).
BATCH_MAX = 16

Batch = list[tuple[RecordingEvent, "asyncio.Future[EnqueueResult]"]]


class Enqueuer:
    """For the receiver's event loop: one per process, shared by all requests.

    Requests that arrive together are coalesced: what is submitted during one turn of the event
    loop goes to Redis as script calls of up to BATCH_MAX events, which cost far less per event
    than a round trip each. The script handles a batch atomically, event by event in order.
    A batch is written to the pipe synchronously and answered from the reply's callback: no
    task or coroutine per batch, and a waiting request is woken straight by its future.
    """

    def __init__(
        self,
        redis: Redis,
        pipe: Pipe,
        template: JobTemplate,
        ledger_ttl: int,
        bound_seconds: float = 10.0,
        wait_replicas: int = 0,
        observe: Callable[[Sequence[RecordingEvent], float], None] | None = None,
    ) -> None:
        self._redis = redis
        self._pipe = pipe
        self._template = template
        self._bound = bound_seconds
        self._wait_replicas = wait_replicas
        self._observe = observe
        self._script: Any = redis.register_script(script_source(template, ledger_ttl))
        self._pending: Batch = []
        self._scheduled = False
        # The event loop, found on first use: `asyncio.get_running_loop()` is a getpid() system
        # call each time (CPython checks for a fork), ~3% of a callback under load (py-spy).
        # Like the pipe's connection, an Enqueuer belongs to the loop it first ran in.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reloads: set[asyncio.Task[None]] = set()

    def enqueue(self, event: RecordingEvent) -> asyncio.Future[EnqueueResult]:
        """The future of the event's outcome; it fails with TimeoutError when Redis has not
        answered within the bound, or with the Redis error that stopped its batch."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[EnqueueResult] = loop.create_future()
        self._pending.append((event, future))
        if len(self._pending) >= BATCH_MAX:
            self._send()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._send_rest)
        return future

    async def submit(self, event: RecordingEvent) -> EnqueueResult:
        return await self.enqueue(event)

    async def submit_in_order(self, events: Sequence[RecordingEvent]) -> list[EnqueueResult]:
        """One script call for `events`, so Redis takes them in this order (batches of concurrent
        requests may reach Redis over different connections, in any order)."""
        call = build_call(self._template, events)
        started = time.perf_counter()
        fresh = await asyncio.wait_for(self._call(call), self._bound)
        if self._observe is not None:
            self._observe(events, time.perf_counter() - started)
        return results_of(fresh, call[2])

    def _send_rest(self) -> None:
        self._scheduled = False
        if self._pending:
            self._send()

    def _send(self) -> None:
        batch, self._pending = self._pending, []
        assert self._loop is not None  # set by enqueue(), the only way into a batch
        # One timer per batch bounds every caller's wait (cheaper than a wait_for each); it is
        # cancelled when the batch is answered, so it does not keep the batch alive for the bound.
        timer = self._loop.call_later(self._bound, _expire, batch)
        events = [event for event, _ in batch]
        try:
            call = build_call(self._template, events)
            replies = self._pipe.send(*self._commands(call))
        except Exception as exc:
            _settle(batch, exc)
            timer.cancel()
            return
        done = functools.partial(self._answered, batch, events, timer, call, time.perf_counter())
        replies.add_done_callback(done)

    def _answered(
        self,
        batch: Batch,
        events: list[RecordingEvent],
        timer: asyncio.TimerHandle,
        call: Call,
        started: float,
        replies: asyncio.Future[list[Any]],
    ) -> None:
        results: list[EnqueueResult] | BaseException
        try:
            results = results_of(self._fresh(replies.result()), call[2])
        except NoScriptError:
            assert self._loop is not None  # a batch exists only after enqueue() set it
            task = self._loop.create_task(self._resend(batch, events, timer, call, started))
            self._reloads.add(task)
            task.add_done_callback(self._reloads.discard)
            return
        except Exception as exc:  # Redis down or slow: the whole batch learns it
            results = exc
        except asyncio.CancelledError:  # the connecting task was cancelled (shutdown): spool them
            results = RedisConnectionError("enqueue was cancelled")
        self._finish(batch, events, timer, results, started)

    async def _resend(
        self, batch: Batch, events: list[RecordingEvent], timer: asyncio.TimerHandle, call: Call, started: float
    ) -> None:
        results: list[EnqueueResult] | BaseException
        try:
            results = results_of(await self._reload_and_send(call), call[2])
        except Exception as exc:
            results = exc
        self._finish(batch, events, timer, results, started)

    def _finish(
        self,
        batch: Batch,
        events: list[RecordingEvent],
        timer: asyncio.TimerHandle,
        results: list[EnqueueResult] | BaseException,
        started: float,
    ) -> None:
        timer.cancel()
        if self._observe is not None and not isinstance(results, BaseException):
            self._observe(events, time.perf_counter() - started)
        _settle(batch, results)

    async def _call(self, call: Call) -> Any:
        try:
            return self._fresh(await self._pipe.send(*self._commands(call)))
        except NoScriptError:
            return await self._reload_and_send(call)

    async def _reload_and_send(self, call: Call) -> Any:
        """Redis restarted or was flushed and forgot the script: load it and send the call again."""
        await self._redis.script_load(self._script.script)
        return self._fresh(await self._pipe.send(*self._commands(call)))

    def _commands(self, call: Call) -> list[tuple[Any, ...]]:
        script_keys, argv, _ = call
        evalsha = ("EVALSHA", self._script.sha, len(script_keys), *script_keys, *argv)
        if not self._wait_replicas:
            return [evalsha]
        # Replication is asynchronous: a batch the master took but no replica holds yet is lost
        # if that replica is promoted. WAIT in the same round trip; unconfirmed means not taken
        # (the caller spools it, and the ledger absorbs the copy that did land).
        return [evalsha, ("WAIT", self._wait_replicas, max(1, int(self._bound * 1000)))]

    def _fresh(self, replies: list[Any]) -> Any:
        if not self._wait_replicas:
            return replies[0]
        fresh, confirmed = replies
        if int(confirmed) < self._wait_replicas:
            raise NotReplicated(f"{confirmed} of {self._wait_replicas} replicas confirmed the batch")
        return fresh


def _settle(batch: Batch, results: list[EnqueueResult] | BaseException) -> None:
    for index, (_, future) in enumerate(batch):
        if future.done():  # the caller gave up waiting (its bound expired)
            continue
        if isinstance(results, BaseException):
            future.set_exception(results)
        else:
            future.set_result(results[index])


def _expire(batch: Batch) -> None:
    _settle(batch, TimeoutError("Redis did not answer in time"))
