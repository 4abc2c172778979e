"""Legal holds: a recording, or a whole call, conference or room, that must never be deleted at Twilio.

Kept in Redis (one hash, `keys.HOLDS`) so the CLI, the console and every worker see the same
holds. A hold names who placed it, why and when; the deletion job checks it when it runs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from receiver.kernel import keys
from receiver.kernel.sids import is_any_sid

if TYPE_CHECKING:
    from redis import Redis

# What a hold may name: a recording (RE, RT, KV) or its parent (CA call, CF conference, RM room).
HOLDABLE = ("RE", "RT", "KV", "CA", "CF", "RM")
MAX_REASON = 500


@dataclass(frozen=True)
class Hold:
    sid: str
    by: str
    reason: str
    at: float

    def line(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(self.at))
        return f"{self.sid}  held by {self.by} since {when}: {self.reason}"


def problem(sid: str) -> str | None:
    """Why `sid` cannot be held, or None."""
    if not is_any_sid(sid) or sid[:2] not in HOLDABLE:
        return f"{sid[:40]!r} is not a recording, call, conference or room SID (RE…, RT…, KV…, CA…, CF…, RM…)"
    return None


def place(redis: Redis, sid: str, by: str, reason: str) -> Hold:
    hold = Hold(sid, by[:100], reason[:MAX_REASON], time.time())
    redis.hset(keys.HOLDS, sid, json.dumps({"by": hold.by, "reason": hold.reason, "at": hold.at}))
    return hold


def release(redis: Redis, sid: str) -> bool:
    """True when there was a hold to release."""
    return bool(redis.hdel(keys.HOLDS, sid))


def every(redis: Redis) -> list[Hold]:
    raw: dict[bytes, bytes] = redis.hgetall(keys.HOLDS)  # type: ignore[assignment]
    found = [_hold(sid.decode(), value) for sid, value in raw.items()]
    return sorted(found, key=lambda hold: hold.at)


def holding(redis: Redis, sids: Iterable[str]) -> Hold | None:
    """The hold on any of `sids` (a recording and its parents), or None."""
    wanted = list(dict.fromkeys(s for s in sids if s))
    if not wanted:
        return None
    values: list[bytes | None] = redis.hmget(keys.HOLDS, wanted)  # type: ignore[assignment]
    for sid, value in zip(wanted, values, strict=True):
        if value is not None:
            return _hold(sid, value)
    return None


def _hold(sid: str, value: bytes | str) -> Hold:
    try:
        data = json.loads(value)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    return Hold(sid, str(data.get("by", "?")), str(data.get("reason", "")), float(data.get("at", 0) or 0))
