"""An event about a recording becomes one delivery per endpoint that wants it, each queued for its first attempt."""

from __future__ import annotations

import json
import secrets

from redis import Redis

from receiver.kernel import keys, webhook_log
from workers.outbound import event_payload
from workers.settings import WorkerSettings


def emit(settings: WorkerSettings, redis: Redis, event_type: str, source: str, sid: str, now: float) -> list[str]:
    """The webhook-ids of the deliveries this event made. Emitting the same event again (a job's
    retry, a second archive run) makes none: each id is the event's and the endpoint's."""
    wanting = [endpoint for endpoint in settings.webhook_endpoint_list if endpoint.wants(event_type)]
    if not wanting:
        return []
    raw: dict[bytes, bytes] = redis.hgetall(keys.recording_key(source, sid))  # type: ignore[assignment]
    recording = {k.decode(): v.decode() for k, v in raw.items()}
    body = json.dumps(event_payload.build(event_type, source, sid, recording, settings.console_public_url, now),
                      separators=(",", ":"), sort_keys=True)
    made = []
    for endpoint in wanting:
        msg_id = event_payload.message_id(endpoint, event_type, source, sid)
        chain = secrets.token_hex(4)
        fields = {"endpoint": endpoint.name, "type": event_type, "source": source, "sid": sid, "body": body,
                  "created_at": now, "chain": chain, "chain_started_at": now}
        if webhook_log.create(redis, msg_id, fields):
            webhook_log.enqueue_attempt(redis, settings.queue_name, msg_id, chain, 1)
            made.append(msg_id)
        else:
            _requeue_unstarted(redis, settings, msg_id)
    return made


def _requeue_unstarted(redis: Redis, settings: WorkerSettings, msg_id: str) -> None:
    """A run that died between keeping a delivery and queuing it left it waiting for nothing: the
    event emitted again queues its first attempt (a no-op when that job exists already)."""
    known = webhook_log.delivery(redis, msg_id)
    if known and known.get("state") == "pending" and known.get("attempts") == "0" and known.get("chain"):
        webhook_log.enqueue_attempt(redis, settings.queue_name, msg_id, known["chain"], 1)
