"""The dedupe-and-enqueue script every role shares, and its synchronous caller (reconciler, replays, tools)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from redis import Redis

from receiver.kernel import keys, stats
from receiver.kernel.events import RecordingEvent
from receiver.kernel.job_template import JobTemplate, rq_time_at

# One call carries a batch. KEYS: the shared keys (queue list, rq:queues, recordings index,
# callback totals, this minute's callback hash), then per event: ledger, job hash, timeline, and
# one search set per parent SID. ARGV: now (ms), RQ timestamp, then per event: number of parent
# SIDs, job id, index member, job data, description, counter field prefix, timeline kind, status.
# Everything that is the same for every job (RQ's static job fields, TTLs, the queue key) is
# written into the script itself, so a call sends only what differs: building and parsing
# commands, not Redis, was the cost on the hot path.
_SCRIPT = """
local now, stamp = ARGV[1], ARGV[2]
local results, counts = {{}}, {{}}
local k, a = 6, 3
while a <= #ARGV do
  local related, job_id, member = tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 2]
  local fresh = redis.call('SET', KEYS[k], job_id, 'NX', 'EX', {ledger_ttl})
  local verdict = 'duplicate'
  if fresh then
    verdict = 'queued'
    redis.call('HSET', KEYS[k + 1], 'data', ARGV[a + 3], 'created_at', stamp, 'enqueued_at', stamp,
               'description', ARGV[a + 4], {static_fields})
    redis.call('RPUSH', KEYS[1], job_id)
    redis.call('ZADD', KEYS[3], 'NX', now, member)
    for i = 1, related do redis.call('SADD', KEYS[k + 2 + i], member) end
  end
  local length = redis.call('RPUSH', KEYS[k + 2], '{{"at":' .. (tonumber(now) / 1000) .. ',"kind":"' ..
    ARGV[a + 6] .. '","status":"' .. ARGV[a + 7] .. '","verdict":"' .. verdict .. '","job_id":"' .. job_id .. '"}}')
  if length > {timeline_limit} then redis.call('LTRIM', KEYS[k + 2], -{timeline_limit}, -1) end
  local field = ARGV[a + 5] .. verdict
  counts[field] = (counts[field] or 0) + 1
  results[#results + 1] = fresh and 1 or 0
  k, a = k + 3 + related, a + 8
end
for field, n in pairs(counts) do
  redis.call('HINCRBY', KEYS[4], field, n)
  redis.call('HINCRBY', KEYS[5], field, n)
end
redis.call('SADD', KEYS[2], {queue_key})
redis.call('EXPIRE', KEYS[5], {minute_ttl})
return results
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


@dataclass(slots=True)
class EnqueueResult:
    outcome: Outcome
    job_id: str


# A script call: its keys, its arguments, and each event's job id.
Call = tuple[list[str], list[Any], list[str]]


def build_call(template: JobTemplate, events: Sequence[RecordingEvent]) -> Call:
    """The script's keys and arguments for a batch of events, and each event's job id."""
    now = time.time()
    script_keys = [template.queue_key, "rq:queues", keys.RECORDINGS_INDEX, stats.CALLBACKS, stats.minute("callbacks", now)]
    argv: list[Any] = [int(now * 1000), rq_time_at(now)]
    job_ids = []
    for event in events:
        # `_value_`, each read once: Enum's `.value` is a Python-level property, and this loop
        # runs for every callback.
        source, sid, status, origin = event.source._value_, event.sid, event.status._value_, event.origin._value_
        job_id = keys.job_id_of(source, sid, status)
        # The search sets let the console find a recording by its call, conference or room
        # while its job still waits.
        parents = [keys.related_key(parent) for parent in event.related.values()]
        script_keys += [keys.ledger_key_of(source, sid, status), f"rq:job:{job_id}", keys.timeline_key(source, sid), *parents]
        argv += [
            len(parents), job_id, event.key, template.data(event.to_payload()),
            f"{source} {sid} {status} ({origin})", stats.callback_field(source, status, ""), origin, status,
        ]
        job_ids.append(job_id)
    return script_keys, argv, job_ids


def results_of(fresh: Sequence[Any], job_ids: list[str]) -> list[EnqueueResult]:
    return [EnqueueResult(Outcome.QUEUED if f else Outcome.DUPLICATE, j) for f, j in zip(fresh, job_ids, strict=False)]


class SyncEnqueuer:
    """The same dedupe-and-enqueue for synchronous callers: the reconciler, replays, tools."""

    def __init__(self, redis: Redis, template: JobTemplate, ledger_ttl: int) -> None:
        self._template = template
        self._script: Any = redis.register_script(script_source(template, ledger_ttl))

    def submit(self, event: RecordingEvent) -> EnqueueResult:
        return self.submit_many([event])[0]

    def submit_many(self, events: Sequence[RecordingEvent]) -> list[EnqueueResult]:
        script_keys, argv, job_ids = build_call(self._template, events)
        return results_of(self._script(keys=script_keys, args=argv), job_ids)
