"""The recordings catalog in Redis: current state (only ever moving forward), fields, timeline."""

from __future__ import annotations

import json
import time
from typing import Any

from redis import Redis

from receiver.kernel import keys
from receiver.kernel.events import STATUS_RANK, RecordingEvent

# A state moves only to a higher rank; at equal rank the first final status stays (a re-run of
# the same status is allowed through so that an interrupted job can finish its work).
# KEYS: recording hash, recordings index, source index, new status index, status index prefix
# ARGV: status, rank, now (s), member, then field/value pairs for the hash.
_TRANSITION = """
local rank = redis.call('HGET', KEYS[1], 'rank')
local status = redis.call('HGET', KEYS[1], 'status')
if rank then
  if tonumber(rank) > tonumber(ARGV[2]) then return {0, status} end
  if tonumber(rank) == tonumber(ARGV[2]) and status ~= ARGV[1] then return {0, status} end
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'rank', ARGV[2], unpack(ARGV, 5))
redis.call('HSETNX', KEYS[1], 'first_seen_at', ARGV[3])
local score = redis.call('ZSCORE', KEYS[2], ARGV[4])
if not score then
  score = math.floor(tonumber(ARGV[3]) * 1000)
  redis.call('ZADD', KEYS[2], score, ARGV[4])
end
redis.call('ZADD', KEYS[3], score, ARGV[4])
if status and status ~= ARGV[1] then redis.call('ZREM', KEYS[5] .. status, ARGV[4]) end
redis.call('ZADD', KEYS[4], score, ARGV[4])
return {1, status or ''}
"""


class Catalog:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._transition = redis.register_script(_TRANSITION)

    def advance(self, event: RecordingEvent) -> tuple[bool, str]:
        """Record the event's status if it moves the recording forward; returns (moved, previous)."""
        now = time.time()
        fields: list[Any] = [
            "source", event.source.value, "sid", event.sid, "account_sid", event.account_sid,
            "updated_at", now,
        ]
        for name, value in event.related.items():
            fields += [name, value]
        if event.error_code:
            fields += ["error_code", event.error_code]
        index_keys = [
            keys.recording_key(event.source.value, event.sid),
            keys.RECORDINGS_INDEX,
            keys.source_index(event.source.value),
            keys.status_index(event.status.value),
            keys.status_index(""),
        ]
        moved, previous = self._transition(
            keys=index_keys, args=[event.status.value, STATUS_RANK[event.status], now, event.key, *fields]
        )
        if event.related:
            pipe = self.redis.pipeline(transaction=False)
            for parent in event.related.values():
                pipe.sadd(keys.related_key(parent), event.key)
            pipe.execute()
        prev = previous.decode() if isinstance(previous, bytes) else str(previous or "")
        return bool(moved), prev

    def update(self, source: str, sid: str, **fields: Any) -> None:
        clean: dict[Any, Any] = {
            k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in fields.items() if v is not None
        }
        if clean:
            self.redis.hset(keys.recording_key(source, sid), mapping=clean)

    def get(self, source: str, sid: str) -> dict[str, str]:
        raw: dict[bytes, bytes] = self.redis.hgetall(keys.recording_key(source, sid))  # type: ignore[assignment]
        return {k.decode(): v.decode() for k, v in raw.items()}

    def note(self, source: str, sid: str, **entry: Any) -> None:
        """Append to the recording's timeline (bounded), for the console."""
        entry.setdefault("at", time.time())
        key = keys.timeline_key(source, sid)
        pipe = self.redis.pipeline(transaction=False)
        pipe.rpush(key, json.dumps(entry, separators=(",", ":"), default=str))
        pipe.ltrim(key, -keys.TIMELINE_LIMIT, -1)
        pipe.execute()
