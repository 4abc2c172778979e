"""Outgoing webhooks in the console: endpoints and their health, deliveries with every attempt, replay and re-enable."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from console import audit, context, csrf
from console.render import url
from receiver.kernel import webhook_log

_MSG_ID = re.compile(r"msg_[0-9a-f]{32}")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
SHOWN = 100


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "", "none") else None
    except ValueError:
        return None


@dataclass
class Overview:
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)


def _endpoint_view(raw: dict[str, str]) -> dict[str, Any]:
    return {"name": raw["name"], "disabled_at": _number(raw.get("disabled_at")), "disabled_reason": raw.get("disabled_reason", ""),
            "failing_since": _number(raw.get("failing_since")), "failures": int(raw.get("failures") or 0),
            "last_success_at": _number(raw.get("last_success_at")), "last_failure": raw.get("last_failure", "")}


def delivery_view(raw: dict[str, str]) -> dict[str, Any]:
    shown = {"last_status": "", "replayed_by": "", "attempts": "0", "state": "", **raw}
    return {**shown, "created_at": _number(raw.get("created_at")), "last_at": _number(raw.get("last_at")),
            "next_at": _number(raw.get("next_at"))}


def load(redis: Redis) -> Overview:
    return Overview([_endpoint_view(e) for e in webhook_log.endpoints(redis)],
                    [delivery_view(d) for d in webhook_log.recent(redis, SHOWN)])


def load_one(redis: Redis, msg_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    found = webhook_log.delivery(redis, msg_id)
    if found is None:
        return None
    found.pop("body", None)  # what the endpoint got is the event: shown by its fields, not repeated here
    return delivery_view({"id": msg_id, **found}), list(reversed(webhook_log.attempts(redis, msg_id)))


async def webhooks_page(request: Request) -> Response:
    console = context.of(request)
    data = await console.run(load, console.redis)
    return console.renderer.page(request, "webhooks.html", w=data)


async def delivery_page(request: Request) -> Response:
    console = context.of(request)
    msg_id = _msg_id(request)
    found = await console.run(load_one, console.redis, msg_id)
    if found is None:
        raise HTTPException(404, "no such delivery (deliveries are kept 30 days)")
    delivery, attempts = found
    return console.renderer.page(request, "webhook.html", d=delivery, attempts=attempts)


def _msg_id(request: Request) -> str:
    msg_id = str(request.path_params["msg_id"])
    if not _MSG_ID.fullmatch(msg_id):
        raise HTTPException(404, "no such delivery")
    return msg_id


async def replay_perform(request: Request) -> Response:
    """Deliver it again, same webhook-id and body, new signature timestamp."""
    console = context.of(request)
    msg_id = _msg_id(request)
    who, _ = await csrf.checked_form(request)

    def act() -> bool:
        done = webhook_log.replay(console.redis, console.queue_name, msg_id, who.user)
        if done:
            found = webhook_log.delivery(console.redis, msg_id) or {}
            audit.record(console.redis, audit.Action(audit.now(), who.user, "webhook replay", "", found.get("source", ""),
                                                     found.get("sid", ""), msg_id),
                         {"kind": "webhook replay", "by": who.user, "webhook_id": msg_id})
        return done

    if not await console.run(act):
        raise HTTPException(404, "no such delivery")
    return RedirectResponse(url(f"/webhooks/{msg_id}", notice="webhook_replayed"), status_code=303)


async def enable_perform(request: Request) -> Response:
    console = context.of(request)
    name = str(request.path_params["name"])
    if not _NAME.fullmatch(name):
        raise HTTPException(404, "no such endpoint")
    who, _ = await csrf.checked_form(request)

    def act() -> bool:
        done = webhook_log.enable(console.redis, name)
        if done:
            audit.record(console.redis, audit.Action(audit.now(), who.user, "webhook enable", "", "", "", name))
        return done

    enabled = await console.run(act)
    return RedirectResponse(url("/webhooks", notice="endpoint_enabled" if enabled else "endpoint_not_disabled"), status_code=303)
