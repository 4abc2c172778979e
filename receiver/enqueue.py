"""Dedupe and enqueue an event in one atomic Redis round trip (a Lua script)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from receiver import keys, stats
from receiver.events import RecordingEvent
from receiver.job_template import JobTemplate, rq_time

# KEYS: ledger, job hash, queue list, rq:queues set, timeline, recordings index,
#       callback totals hash, this minute's callback hash, then one search set per parent SID
# ARGV: job id, now (ms), index member, job data, RQ timestamp, description,
#       counter field prefix "{source}|{status}|", timeline kind, status
# Everything that is the same for every job (RQ's static job fields, TTLs, the queue key) is
# written into the script itself, so each call sends only what differs: packing arguments was
# the largest cost on the hot path.
_SCRIPT = """
local fresh = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', {ledger_ttl})
local verdict = 'duplicate'
if fresh then
  verdict = 'queued'
  redis.call('HSET', KEYS[2], 'data', ARGV[4], 'created_at', ARGV[5], 'enqueued_at', ARGV[5],
             'description', ARGV[6], {static_fields})
  redis.call('RPUSH', KEYS[3], ARGV[1])
  redis.call('SADD', KEYS[4], {queue_key})
  redis.call('ZADD', KEYS[6], 'NX', ARGV[2], ARGV[3])
  for i = 9, #KEYS do redis.call('SADD', KEYS[i], ARGV[3]) end
end
redis.call('RPUSH', KEYS[5], '{{"at":' .. (tonumber(ARGV[2]) / 1000) .. ',"kind":"' .. ARGV[8] ..
  '","status":"' .. ARGV[9] .. '","verdict":"' .. verdict .. '","job_id":"' .. ARGV[1] .. '"}}')
redis.call('LTRIM', KEYS[5], -{timeline_limit}, -1)
redis.call('HINCRBY', KEYS[7], ARGV[7] .. verdict, 1)
redis.call('HINCRBY', KEYS[8], ARGV[7] .. verdict, 1)
redis.call('EXPIRE', KEYS[8], {minute_ttl})
if fresh then return 1 else return 0 end
"""


def _lua(value: str) -> str:
    """A Lua string literal (JSON's escaping is valid Lua for these ASCII values)."""
    return json.dumps(value)


def script_source(template: JobTemplate, ledger_ttl: int) -> str:
    static = ", ".join(f"{_lua(k)}, {_lua(v)}" for k, v in template.static.items())
    return _SCRIPT.format(
        ledger_ttl=int(ledger_ttl),
        static_fields=static,
        queue_key=_lua(template.queue_key),
        timeline_limit=keys.TIMELINE_LIMIT,
        minute_ttl=stats.MINUTE_TTL_SECONDS,
    )


class Outcome(str, Enum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    outcome: Outcome
    job_id: str


def build_call(template: JobTemplate, event: RecordingEvent) -> tuple[str, list[str], list[Any]]:
    """The script's keys and arguments for one event; shared by the async and sync enqueuers."""
    job_id = keys.job_id(event)
    now = time.time()
    source, status = event.source.value, event.status.value
    script_keys = [
        keys.ledger_key(event),
        f"rq:job:{job_id}",
        template.queue_key,
        "rq:queues",
        keys.timeline_key(source, event.sid),
        keys.RECORDINGS_INDEX,
        stats.CALLBACKS,
        stats.minute("callbacks", now),
        # So the console finds a recording by its call, conference or room while it still waits.
        *(keys.related_key(parent) for parent in event.related.values()),
    ]
    argv: list[Any] = [
        job_id,
        int(now * 1000),
        event.key,
        template.data(event.to_payload()),
        rq_time(),
        f"{source} {event.sid} {status} ({event.origin.value})",
        stats.callback_field(source, status, ""),
        event.origin.value,
        status,
    ]
    return job_id, script_keys, argv


def _result(fresh: Any, job_id: str) -> EnqueueResult:
    return EnqueueResult(Outcome.QUEUED if fresh else Outcome.DUPLICATE, job_id)


class Enqueuer:
    """For the receiver's event loop: one per process, shared by all requests.

    Requests that arrive together are coalesced: everything submitted during one turn of the
    event loop goes to Redis as one pipeline of script calls (one write, one read), which costs
    far less per event than a round trip each. Each call is still its own atomic script.
    """

    def __init__(self, redis: Redis, template: JobTemplate, ledger_ttl: int) -> None:
        self._redis = redis
        self._template = template
        self._script: Any = redis.register_script(script_source(template, ledger_ttl))
        self._pending: list[tuple[list[str], list[Any], asyncio.Future[Any]]] = []

    async def submit(self, event: RecordingEvent) -> EnqueueResult:
        job_id, script_keys, argv = build_call(self._template, event)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((script_keys, argv, future))
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_soon(self._start_flush)
        return _result(await future, job_id)

    def _start_flush(self) -> None:
        batch, self._pending = self._pending, []
        asyncio.get_running_loop().create_task(self._flush(batch))

    async def _flush(self, batch: list[tuple[list[str], list[Any], asyncio.Future[Any]]]) -> None:
        try:
            results = await self._run(batch)
        except Exception as exc:  # Redis down or slow: every caller in the batch learns it.
            results = [exc] * len(batch)
        for (_, _, future), result in zip(batch, results):
            if future.done():  # the caller gave up waiting (its bound expired)
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _run(self, batch: list[tuple[list[str], list[Any], asyncio.Future[Any]]]) -> list[Any]:
        for attempt in range(2):
            pipe = self._redis.pipeline(transaction=False)
            for script_keys, argv, _ in batch:
                pipe.evalsha(self._script.sha, len(script_keys), *script_keys, *argv)
            results: list[Any] = await pipe.execute(raise_on_error=False)
            if attempt == 0 and any(isinstance(r, NoScriptError) for r in results):
                # Redis restarted or was flushed: load the script once and send the batch again.
                await self._redis.script_load(self._script.script)
                continue
            return results
        return results


class SyncEnqueuer:
    """The same dedupe-and-enqueue for synchronous callers: the reconciler, replays, the spool."""

    def __init__(self, redis: SyncRedis, template: JobTemplate, ledger_ttl: int) -> None:
        self._template = template
        self._script: Any = redis.register_script(script_source(template, ledger_ttl))

    def submit(self, event: RecordingEvent) -> EnqueueResult:
        job_id, script_keys, argv = build_call(self._template, event)
        return _result(self._script(keys=script_keys, args=argv), job_id)
