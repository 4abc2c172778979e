"""One attempt of a delivery: sign, POST, record the attempt, then schedule the next one, give up, or disable the endpoint."""

from __future__ import annotations

import json
import time
from typing import Any

from redis import Redis

from receiver.kernel import keys, logs, stats, webhook_log
from receiver.kernel.webhook_endpoints import Endpoint
from workers.outbound import backoff, health, signing
from workers.outbound.send import Answer, post
from workers.settings import WorkerSettings
from workers.twilio_rest.egress import Egress, origins

log = logs.get("workers.outbound.delivery")


def attempt(settings: WorkerSettings, redis: Redis, egress: Egress, payload: dict[str, Any]) -> dict[str, Any]:
    msg_id, chain, number = str(payload["id"]), str(payload["chain"]), int(payload["attempt"])
    found = webhook_log.delivery(redis, msg_id)
    if found is None:
        return {"skipped": "no such delivery (expired)"}
    if found.get("chain") != chain:
        return {"skipped": "stale: the delivery was replayed since"}
    endpoint = next((e for e in settings.webhook_endpoint_list if e.name == found["endpoint"]), None)
    if endpoint is None:
        return _settle(redis, msg_id, found, "endpoint_removed")
    forced = found.get("forced_chain") == chain
    if webhook_log.disabled(redis, endpoint.name) and not forced:
        return _settle(redis, msg_id, found, "endpoint_disabled")
    now = time.time()
    answer = _send(egress, endpoint, msg_id, found["body"].encode(), now)
    _record(redis, msg_id, found, number, answer, now)
    if answer.ok:
        health.succeeded(redis, endpoint.name, now)
        return _settle(redis, msg_id, found, "delivered")
    reason = f"HTTP {answer.status}" if answer.status is not None else answer.excerpt
    if health.failed(redis, settings, endpoint.name, now, reason):
        log.warning("webhook endpoint disabled", endpoint=endpoint.name, reason=reason)
        return _settle(redis, msg_id, found, "endpoint_disabled")
    if forced and webhook_log.disabled(redis, endpoint.name):
        return _settle(redis, msg_id, found, "failed")
    return _again(settings, redis, msg_id, found, number, answer, now)


def _send(egress: Egress, endpoint: Endpoint, msg_id: str, body: bytes, now: float) -> Answer:
    timestamp = int(now)
    return post(egress, endpoint.url, body, signing.headers(endpoint.secrets, msg_id, timestamp, body))


def _record(redis: Redis, msg_id: str, found: dict[str, str], number: int, answer: Answer, now: float) -> None:
    entry = {"at": now, "attempt": number, "status": answer.status, "ms": round(answer.seconds * 1000),
             "excerpt": answer.excerpt, "chain": found.get("chain")}
    pipe = redis.pipeline(transaction=True)
    pipe.rpush(webhook_log.attempts_key(msg_id), json.dumps(entry, separators=(",", ":")))
    pipe.ltrim(webhook_log.attempts_key(msg_id), -webhook_log.ATTEMPTS_KEPT, -1)
    pipe.expire(webhook_log.attempts_key(msg_id), webhook_log.KEPT_SECONDS)
    pipe.hincrby(webhook_log.delivery_key(msg_id), "attempts", 1)
    pipe.hset(webhook_log.delivery_key(msg_id), mapping={"last_status": answer.status or "none", "last_at": now})
    pipe.execute()


def _again(settings: WorkerSettings, redis: Redis, msg_id: str, found: dict[str, str], number: int, answer: Answer,
           now: float) -> dict[str, Any]:
    wait = backoff.delay(settings, number, answer.retry_after)
    started = float(found.get("chain_started_at") or found["created_at"])
    # Counted on the schedule's own clock (an attempt is due when it was planned, even if run
    # late or early), so the number of attempts is what WEBHOOK_RETRY_FOR says, however busy the workers.
    due = max(now, float(found.get("next_at") or now)) + wait
    if backoff.gives_up(settings, started, due):
        log.warning("webhook delivery given up", id=msg_id, endpoint=found["endpoint"], attempts=number)
        return _settle(redis, msg_id, found, "given_up")
    redis.hset(webhook_log.delivery_key(msg_id), mapping={"state": "retrying", "next_at": due})
    webhook_log.enqueue_attempt(redis, settings.queue_name, msg_id, found["chain"], number + 1, wait)
    _count(redis, found["endpoint"], "retrying")
    log.info("webhook attempt failed", id=msg_id, endpoint=found["endpoint"], status=answer.status, attempt=number,
             retry_in=round(wait, 1))
    return {"state": "retrying", "attempt": number, "retry_in": wait}


def _settle(redis: Redis, msg_id: str, found: dict[str, str], state: str) -> dict[str, Any]:
    pipe = redis.pipeline(transaction=True)
    pipe.hset(webhook_log.delivery_key(msg_id), "state", state)
    pipe.hdel(webhook_log.delivery_key(msg_id), "next_at")
    pipe.execute()
    _count(redis, found["endpoint"], state)
    _note(redis, found, msg_id, state)
    log.info("webhook delivery settled", id=msg_id, endpoint=found["endpoint"], state=state)
    return {"state": state}


def _count(redis: Redis, endpoint: str, outcome: str) -> None:
    redis.hincrby(stats.WEBHOOK_DELIVERIES, f"{endpoint}|{outcome}", 1)


def _note(redis: Redis, found: dict[str, str], msg_id: str, state: str) -> None:
    """The outcome on the recording's timeline, where the console shows its history."""
    entry = {"at": time.time(), "kind": "webhook", "outcome": state, "endpoint": found["endpoint"],
             "event": found["type"], "webhook_id": msg_id}
    key = keys.timeline_key(found["source"], found["sid"])
    pipe = redis.pipeline(transaction=False)
    pipe.rpush(key, json.dumps(entry, separators=(",", ":")))
    pipe.ltrim(key, -keys.TIMELINE_LIMIT, -1)
    pipe.execute()


def egress_for(settings: WorkerSettings, client: Any) -> Egress:
    """Public HTTPS addresses only, unless WEBHOOK_ALLOW_PRIVATE lets the endpoints' own origins through."""
    allowed = origins(e.url for e in settings.webhook_endpoint_list) if settings.webhook_allow_private else frozenset()
    return Egress(client, allowed)
