"""Who did what from the console: a log line, the recording's timeline, and a short shared list."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from redis import Redis

from console.replies import optional_number, text
from receiver.kernel import keys, logs

# Recent console actions, newest first, for the Failures page; every console process writes here.
AUDIT_KEY = f"{keys.PREFIX}:console:audit"
AUDIT_LIMIT = 500

log = logs.get("console.audit")


@dataclass(frozen=True)
class Action:
    at: float
    user: str
    action: str
    job_id: str
    source: str
    sid: str
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def record(redis: Redis, action: Action, timeline_entry: dict[str, Any] | None = None) -> None:
    """Log the action, add it to the shared list and, when given, to the recording's timeline."""
    context = {"sid": action.sid, "source": action.source, "detail": action.detail}
    log.info(
        "console action", user=action.user, action=action.action, job_id=action.job_id,
        **{k: v for k, v in context.items() if v},
    )
    pipe = redis.pipeline(transaction=False)
    pipe.lpush(AUDIT_KEY, json.dumps(action.to_json(), separators=(",", ":")))
    pipe.ltrim(AUDIT_KEY, 0, AUDIT_LIMIT - 1)
    if timeline_entry is not None and action.source and action.sid:
        key = keys.timeline_key(action.source, action.sid)
        pipe.rpush(key, json.dumps({"at": action.at, **timeline_entry}, separators=(",", ":")))
        pipe.ltrim(key, -keys.TIMELINE_LIMIT, -1)
    pipe.execute()


def recent(redis: Redis, count: int = 20) -> list[Action]:
    actions = []
    for raw in redis.lrange(AUDIT_KEY, 0, count - 1):
        try:
            data = json.loads(text(raw))
            actions.append(Action(
                at=optional_number(data.get("at")) or 0.0, user=str(data.get("user", "")), action=str(data.get("action", "")),
                job_id=str(data.get("job_id", "")), source=str(data.get("source", "")), sid=str(data.get("sid", "")),
                detail=str(data.get("detail", "")),
            ))
        except (ValueError, AttributeError):
            continue
    return actions


def now() -> float:
    return time.time()
