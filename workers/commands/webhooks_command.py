"""`webhooks` and `webhook-enable`: the endpoints' health from the command line, and re-enabling a disabled one."""

from __future__ import annotations

import time

import click
from redis import Redis

from receiver.kernel import webhook_log
from workers.commands.cli_errors import Mistake
from workers.settings import WorkerSettings


def every(settings: WorkerSettings, redis: Redis) -> None:
    """One line per endpoint, configured or known from its deliveries: never its URL's path or its secrets."""
    configured = {e.name: e for e in settings.webhook_endpoint_list}
    known = {e["name"]: e for e in webhook_log.endpoints(redis)}
    now = time.time()
    for name in sorted(set(configured) | set(known)):
        health = known.get(name, {})
        if "disabled_at" in health:
            state = f"DISABLED {_ago(now, health['disabled_at'])}: {health.get('disabled_reason', '')}"
        elif "failing_since" in health:
            state = f"failing since {_ago(now, health['failing_since'])} ({health.get('failures', '?')} failed attempts)"
        else:
            state = "ok"
        where = "" if name in configured else "  (no longer in WEBHOOK_ENDPOINTS)"
        click.echo(f"{name:<20}  {state}{where}")
    click.echo(f"{len(set(configured) | set(known))} endpoint(s)")


def enable(redis: Redis, name: str) -> None:
    if not webhook_log.enable(redis, name):
        raise Mistake(f"endpoint {name[:40]!r} is not disabled (`recording-receiver webhooks` lists them)")
    click.echo(f"enabled    {name}: its next deliveries go out; replay the ones it missed from the console")


def _ago(now: float, epoch: str) -> str:
    hours = (now - float(epoch)) / 3600
    return f"{hours:.1f} h ago"
