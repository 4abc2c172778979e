"""Dedupe and enqueue an event in one atomic Redis round trip (a Lua script)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

from redis import Redis as SyncRedis
from redis.asyncio import Redis

from receiver import keys, stats
from receiver.events import RecordingEvent
from receiver.job_template import JobTemplate

# KEYS: ledger, job hash, queue list, rq:queues set, timeline, recordings index,
#       callback totals hash, this minute's callback hash
# ARGV: job id, ledger ttl, queue key, timeline entry (accepted), timeline entry (duplicate),
#       index member, index score, timeline limit, counter field (queued), counter field
#       (duplicate), minute bucket ttl, then the job's HSET field/value pairs.
_SCRIPT = """
local fresh = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])
local counter
if fresh then
  redis.call('HSET', KEYS[2], unpack(ARGV, 12))
  redis.call('RPUSH', KEYS[3], ARGV[1])
  redis.call('SADD', KEYS[4], ARGV[3])
  redis.call('RPUSH', KEYS[5], ARGV[4])
  redis.call('ZADD', KEYS[6], 'NX', ARGV[7], ARGV[6])
  counter = ARGV[9]
else
  redis.call('RPUSH', KEYS[5], ARGV[5])
  counter = ARGV[10]
end
redis.call('LTRIM', KEYS[5], -tonumber(ARGV[8]), -1)
redis.call('HINCRBY', KEYS[7], counter, 1)
redis.call('HINCRBY', KEYS[8], counter, 1)
redis.call('EXPIRE', KEYS[8], ARGV[11])
if fresh then return 1 else return 0 end
"""


class Outcome(str, Enum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    outcome: Outcome
    job_id: str


def _entry(event: RecordingEvent, verdict: str, job_id: str) -> str:
    return json.dumps(
        {"at": time.time(), "kind": event.origin.value, "status": event.status.value, "verdict": verdict, "job_id": job_id},
        separators=(",", ":"),
    )


class EnqueueCall:
    """The script's keys and arguments for one event; shared by the async and sync enqueuers."""

    def __init__(self, template: JobTemplate, ledger_ttl: int) -> None:
        self._template = template
        self._ledger_ttl = ledger_ttl

    def build(self, event: RecordingEvent) -> tuple[str, list[str], list[Any]]:
        job_id = keys.job_id(event)
        now = time.time()
        description = f"{event.source.value} {event.sid} {event.status.value} ({event.origin.value})"
        script_keys = [
            keys.ledger_key(event),
            f"rq:job:{job_id}",
            self._template.queue_key,
            "rq:queues",
            keys.timeline_key(event.source.value, event.sid),
            keys.RECORDINGS_INDEX,
            stats.CALLBACKS,
            stats.minute("callbacks", now),
        ]
        argv: list[Any] = [
            job_id,
            self._ledger_ttl,
            self._template.queue_key,
            _entry(event, "queued", job_id),
            _entry(event, "duplicate", job_id),
            event.key,
            int(now * 1000),
            keys.TIMELINE_LIMIT,
            stats.callback_field(event.source.value, event.status.value, Outcome.QUEUED.value),
            stats.callback_field(event.source.value, event.status.value, Outcome.DUPLICATE.value),
            stats.MINUTE_TTL_SECONDS,
            *self._template.fields(event.to_payload(), description),
        ]
        return job_id, script_keys, argv


def _result(fresh: Any, job_id: str) -> EnqueueResult:
    return EnqueueResult(Outcome.QUEUED if fresh else Outcome.DUPLICATE, job_id)


class Enqueuer:
    """For the receiver's event loop: one per process, shared by all requests."""

    def __init__(self, redis: Redis, template: JobTemplate, ledger_ttl: int) -> None:
        self._call = EnqueueCall(template, ledger_ttl)
        self._script: Any = redis.register_script(_SCRIPT)

    async def submit(self, event: RecordingEvent) -> EnqueueResult:
        job_id, script_keys, argv = self._call.build(event)
        return _result(await self._script(keys=script_keys, args=argv), job_id)


class SyncEnqueuer:
    """The same dedupe-and-enqueue for synchronous callers: the reconciler, replays, the spool."""

    def __init__(self, redis: SyncRedis, template: JobTemplate, ledger_ttl: int) -> None:
        self._call = EnqueueCall(template, ledger_ttl)
        self._script: Any = redis.register_script(_SCRIPT)

    def submit(self, event: RecordingEvent) -> EnqueueResult:
        job_id, script_keys, argv = self._call.build(event)
        return _result(self._script(keys=script_keys, args=argv), job_id)
