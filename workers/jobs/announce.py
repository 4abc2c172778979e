"""Jobs that tell the world about a recording: events to webhook endpoints, and the in-process reactions.

`deliver_webhook` and `run_reaction` are job functions (named at the package); `announce` is
called by the recording and deletion jobs once a recording reached a state worth an event."""

from __future__ import annotations

import json
import time
from typing import Any

import structlog

from receiver.kernel import logs
from workers.jobs import context
from workers.jobs.context import WorkerContext
from workers.outbound import delivery, emit, event_payload, reactions

log = logs.get("workers.jobs.announce")


def announce(ctx: WorkerContext, event_type: str, source: str, sid: str) -> None:
    """Emit the event to the endpoints that want it and, after an archive, queue the reactions.
    Safe to call again for the same event: neither is sent twice."""
    now = time.time()
    emit.emit(ctx.settings, ctx.redis, event_type, source, sid, now)
    if event_type == "recording.archived" and reactions.registered():
        recording = ctx.catalog.get(source, sid)
        event = event_payload.build(event_type, source, sid, recording, ctx.settings.console_public_url, now)
        reactions.schedule(ctx.settings, ctx.redis, event)


def deliver_webhook(payload: dict[str, Any]) -> dict[str, Any]:
    ctx = context.current()
    structlog.contextvars.bind_contextvars(webhook_id=str(payload.get("id")))
    try:
        return delivery.attempt(ctx.settings, ctx.redis, ctx.webhook_egress, payload)
    finally:
        structlog.contextvars.clear_contextvars()


def run_reaction(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one reaction; an exception fails this job alone (RQ retries it), never the archive or
    another reaction."""
    ctx = context.current()
    name, event = str(payload["reaction"]), dict(payload["event"])
    data = event.get("data") or {}
    structlog.contextvars.bind_contextvars(reaction=name, sid=data.get("recording_sid"), source=data.get("source"))
    try:
        function = reactions.find(name)
        started = time.monotonic()
        try:
            result = function(event)
        except Exception as exc:
            _note(ctx, data, name, "failed", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            log.warning("reaction failed", error=type(exc).__name__)
            raise
        _note(ctx, data, name, "done", seconds=round(time.monotonic() - started, 3))
        return {"reaction": name, "result": result if _plain(result) else repr(result)[:200]}
    finally:
        structlog.contextvars.clear_contextvars()


def _note(ctx: WorkerContext, data: dict[str, Any], name: str, outcome: str, **extra: Any) -> None:
    if data.get("source") and data.get("recording_sid"):
        ctx.catalog.note(str(data["source"]), str(data["recording_sid"]), kind="reaction", reaction=name, outcome=outcome,
                         **extra)


def _plain(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
