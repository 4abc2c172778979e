"""Server-side HTML: one Jinja2 environment with autoescaping, and the filters the pages share."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse

from console import csrf
from console.archive_facts import epoch_of

TEMPLATES = Path(__file__).parent / "templates"
NOTICES = {
    "replayed": "Replayed {n} job(s). A worker will pick it up; reload to follow it.",
    "discarded": "Discarded {n} job(s).",
    "not_failed": "That job is no longer in the failed list: someone may have replayed or discarded it already.",
    "held": "Held: it will not be deleted at Twilio while the hold lasts.",
    "hold_needs_reason": "Say why it is held: the reason is kept with the hold.",
    "released": "Hold released: its deletion at Twilio, if one is scheduled, goes ahead at its next look.",
    "not_held": "It was not held (someone may have released it already).",
    "webhook_replayed": "Replay queued: the same webhook-id and body go out again; reload to follow its attempts.",
    "endpoint_enabled": "Endpoint enabled: its next deliveries go out again (replay the ones it missed).",
    "endpoint_not_disabled": "That endpoint was not disabled.",
    "logged_out": "You are signed out.",
    "logged_out_everywhere": "You are signed out in every browser.",
}


def ago(epoch: float | None, now: float | None = None) -> str:
    if epoch is None:
        return "never"
    delta = (now or time.time()) - epoch
    if delta < 0:
        return "in " + duration(-delta)
    if delta < 5:
        return "just now"
    return duration(delta) + " ago"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min {int(seconds % 60)} s" if minutes < 10 else f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60} min"
    return f"{hours // 24} d {hours % 24} h"


def utc(epoch: float | None) -> str:
    if epoch is None:
        return "–"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def count(value: float | None) -> str:
    return "–" if value is None else f"{value:,}"


def size(value: str | int | None) -> str:
    try:
        n = float(value or 0)
    except ValueError:
        return str(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def url(path: str, **params: Any) -> str:
    """A local URL with query parameters; empty values are left out."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{path}?{query}" if query else path


def safe_next(value: str | None, default: str = "/") -> str:
    """Only a path on this console: never another host (`//x`, `/\\x`) nor a scheme."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or any(c < " " for c in value):
        return default
    return value


class Renderer:
    def __init__(self, auth_open: bool) -> None:
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
            trim_blocks=True, lstrip_blocks=True,
        )
        self.env.filters.update(ago=ago, duration=duration, utc=utc, count=count, size=size, epoch=epoch_of)
        self.env.globals.update(url=url, auth_open=auth_open)

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        who = request.scope.get("state", {}).get("identity")
        notice = NOTICES.get(request.query_params.get("notice", ""), "")
        number = request.query_params.get("n", "")
        values = {
            "user": getattr(who, "user", ""), "via": getattr(who, "via", ""), "csrf_token": getattr(who, "csrf", ""),
            "csrf_field": csrf.FIELD, "path": request.url.path, "now": time.time(),
            "notice": notice.format(n=number if number.isdigit() else "?"), **context,
        }
        return HTMLResponse(self.env.get_template(template).render(values), status_code=status)
