"""Outgoing webhook deliveries and endpoint health as Redis keeps them: the workers write them, the console shows, replays and re-enables."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from datetime import timedelta
from typing import Any

from redis import Redis
from rq import Queue
from rq.exceptions import DuplicateJobError
from rq.job import Retry
from rq.serializers import JSONSerializer

from receiver.kernel.keys import DELIVER_FUNCTION, PREFIX

# Every delivery, newest first: member = webhook-id, score = created (epoch seconds).
DELIVERIES = f"{PREFIX}:hook:deliveries"
# Every endpoint name a delivery was made for (the console lists their health).
ENDPOINTS = f"{PREFIX}:hook:endpoints"
KEPT_DELIVERIES = 5000
KEPT_SECONDS = 30 * 24 * 3600
ATTEMPTS_KEPT = 50
# A crashed attempt (worker killed, Redis blip) is run again by RQ; an HTTP failure is not: the
# attempt schedules the next one itself, on the webhook schedule.
CRASH_RETRY = Retry(max=3, interval=[10, 60, 300])


def delivery_key(msg_id: str) -> str:
    """Hash: endpoint, type, source, sid, body, created_at, state, chain, attempts, next_at, last_*."""
    return f"{PREFIX}:hook:d:{msg_id}"


def attempts_key(msg_id: str) -> str:
    """List of JSON attempts, oldest first, the last ATTEMPTS_KEPT."""
    return f"{PREFIX}:hook:a:{msg_id}"


def endpoint_key(name: str) -> str:
    """Hash: failing_since, failures, last_success_at, disabled_at, disabled_reason."""
    return f"{PREFIX}:hook:e:{name}"


def recording_deliveries_key(source: str, sid: str) -> str:
    return f"{PREFIX}:hook:r:{source}:{sid}"


def _text(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


def create(redis: Redis, msg_id: str, fields: dict[str, Any]) -> bool:
    """Keep a new delivery; False when one with this id exists (an event emitted twice)."""
    key = delivery_key(msg_id)
    if not redis.hsetnx(key, "created_at", fields["created_at"]):
        return False
    pipe = redis.pipeline(transaction=True)
    mapping: dict[Any, Any] = {**fields, "state": "pending", "attempts": 0}
    pipe.hset(key, mapping=mapping)
    pipe.expire(key, KEPT_SECONDS)
    pipe.zadd(DELIVERIES, {msg_id: float(fields["created_at"])})
    pipe.zremrangebyrank(DELIVERIES, 0, -KEPT_DELIVERIES - 1)
    pipe.sadd(ENDPOINTS, str(fields["endpoint"]))
    pipe.rpush(recording_deliveries_key(str(fields["source"]), str(fields["sid"])), msg_id)
    pipe.ltrim(recording_deliveries_key(str(fields["source"]), str(fields["sid"])), -100, -1)
    pipe.expire(recording_deliveries_key(str(fields["source"]), str(fields["sid"])), KEPT_SECONDS)
    pipe.execute()
    return True


def delivery(redis: Redis, msg_id: str) -> dict[str, str] | None:
    found = _text(redis.hgetall(delivery_key(msg_id)))  # type: ignore[arg-type]
    return found or None


def attempts(redis: Redis, msg_id: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in redis.lrange(attempts_key(msg_id), 0, -1)]  # type: ignore[union-attr]


def recent(redis: Redis, limit: int = 100) -> list[dict[str, str]]:
    """The newest deliveries (no bodies), newest first."""
    ids = [raw.decode() for raw in redis.zrevrange(DELIVERIES, 0, limit - 1)]  # type: ignore[union-attr]
    return _without_bodies(redis, ids)


def of_recording(redis: Redis, source: str, sid: str) -> list[dict[str, str]]:
    ids = [raw.decode() for raw in redis.lrange(recording_deliveries_key(source, sid), 0, -1)]  # type: ignore[union-attr]
    return _without_bodies(redis, ids)


def _without_bodies(redis: Redis, ids: list[str]) -> list[dict[str, str]]:
    pipe = redis.pipeline(transaction=False)
    for msg_id in ids:
        pipe.hgetall(delivery_key(msg_id))
    found = []
    for msg_id, raw in zip(ids, pipe.execute(), strict=True):
        if raw:
            row = _text(raw)
            row.pop("body", None)
            found.append({"id": msg_id, **row})
    return found


def endpoints(redis: Redis) -> list[dict[str, str]]:
    names = sorted(raw.decode() for raw in redis.smembers(ENDPOINTS))  # type: ignore[union-attr]
    return [{"name": name, **_text(redis.hgetall(endpoint_key(name)))} for name in names]  # type: ignore[arg-type]


def disabled(redis: Redis, name: str) -> bool:
    return bool(redis.hexists(endpoint_key(name), "disabled_at"))


def enable(redis: Redis, name: str) -> bool:
    """Re-enable an endpoint: its failing spell starts over. False when it was not disabled."""
    pipe = redis.pipeline(transaction=True)
    pipe.hexists(endpoint_key(name), "disabled_at")
    pipe.hdel(endpoint_key(name), "disabled_at", "disabled_reason", "failing_since", "failures")
    was, _ = pipe.execute()
    return bool(was)


def enqueue_attempt(redis: Redis, queue_name: str, msg_id: str, chain: str, number: int, delay: float = 0) -> str:
    """Queue attempt `number` of a delivery's current chain (now, or after `delay` seconds)."""
    queue = Queue(queue_name, connection=redis, serializer=JSONSerializer)
    job_id = f"rr-hook-{msg_id}-{chain}-{number}"
    args = ({"v": 1, "id": msg_id, "chain": chain, "attempt": number},)
    options: dict[str, Any] = dict(job_id=job_id, unique=True, retry=CRASH_RETRY, result_ttl=24 * 3600, failure_ttl=7 * 24 * 3600,
                                   description=f"webhook {msg_id} attempt {number}")
    with contextlib.suppress(DuplicateJobError):  # queued already: the event was emitted again
        if delay > 0:
            queue.enqueue_in(timedelta(seconds=delay), DELIVER_FUNCTION, *args, **options)
        else:
            queue.enqueue(DELIVER_FUNCTION, *args, **options)
    return job_id


def replay(redis: Redis, queue_name: str, msg_id: str, by: str) -> bool:
    """Deliver again, with the same webhook-id and body (even to a disabled endpoint: someone asked):
    a new chain of attempts, so any retry still scheduled from the old one finds itself stale and
    sends nothing. False: no such delivery."""
    if not redis.exists(delivery_key(msg_id)):
        return False
    chain = secrets.token_hex(4)
    redis.hset(delivery_key(msg_id), mapping={"chain": chain, "forced_chain": chain, "state": "pending", "replayed_by": by,
                                              "replayed_at": time.time(), "chain_started_at": time.time()})
    enqueue_attempt(redis, queue_name, msg_id, chain, 1)
    return True
