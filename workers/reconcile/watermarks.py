"""Where each reconciler pass starts listing, per account and source: stored in Redis, only ever moving forward."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from redis import Redis

from receiver.kernel import keys
from workers.twilio_rest.timestamps import iso_z, parse

# Fixed-width ISO strings compare like the times they name, so "forward only" is one comparison;
# two passes that finish together (the schedule and an operator's CLI run) cannot move it back.
_ADVANCE = """
local current = redis.call('GET', KEYS[1])
if (not current) or current < ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
return current
"""


class Watermarks:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._advance: Any = redis.register_script(_ADVANCE)

    def get(self, account_sid: str, source: str) -> datetime | None:
        raw = self._redis.get(keys.watermark_key(account_sid, source))
        return parse(raw.decode() if isinstance(raw, bytes) else raw)

    def advance(self, account_sid: str, source: str, mark: datetime) -> datetime:
        """Store `mark` unless a later one is stored already; returns what is stored now."""
        stored = self._advance(keys=[keys.watermark_key(account_sid, source)], args=[iso_z(mark)])
        result = parse(stored.decode() if isinstance(stored, bytes) else stored)
        assert result is not None
        return result


class Tracker:
    """Works out the next watermark from what one pass saw.

    The newest recording seen minus the overlap, so one that Twilio lists late is still caught;
    but never past a recording that is still being recorded or processed (its final state is
    what we are waiting for), unless that one is older than the lookback window (stuck).
    """

    def __init__(self, overlap: timedelta, hold_floor: datetime) -> None:
        self._overlap = overlap
        self._hold_floor = hold_floor
        self.newest: datetime | None = None
        self.oldest_pending: datetime | None = None

    def saw(self, created: datetime | None, pending: bool) -> None:
        if created is None:
            return
        if self.newest is None or created > self.newest:
            self.newest = created
        if pending and created >= self._hold_floor and (self.oldest_pending is None or created < self.oldest_pending):
            self.oldest_pending = created

    def next_mark(self) -> datetime | None:
        if self.newest is None:
            return None
        mark = self.newest - self._overlap
        if self.oldest_pending is not None and self.oldest_pending < mark:
            mark = self.oldest_pending
        # Whole seconds, rounded down: the stored form has no fractions and must not skip any.
        return mark.replace(microsecond=0)
