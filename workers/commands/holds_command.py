"""`hold`, `release`, `holds` and `deletions`: legal holds and the dry run of deletions at Twilio."""

from __future__ import annotations

import getpass

import click
from redis import Redis

from receiver.kernel import holds
from workers.commands.cli_errors import Mistake
from workers.jobs import deletion_schedule
from workers.settings import WorkerSettings


def place(redis: Redis, sid: str, reason: str, by: str | None) -> None:
    problem = holds.problem(sid)
    if problem:
        raise Mistake(problem)
    if not reason.strip():
        raise Mistake("--reason must say why (it is kept with the hold)")
    hold = holds.place(redis, sid, by or _who(), " ".join(reason.split()))
    click.echo(f"held       {hold.line()}")


def release(redis: Redis, sid: str) -> None:
    problem = holds.problem(sid)
    if problem:
        raise Mistake(problem)
    if not holds.release(redis, sid):
        raise Mistake(f"{sid} is not held (`recording-receiver holds` lists the holds)")
    click.echo(f"released   {sid}: its deletion at Twilio, if one is scheduled, goes ahead at its next look")


def every(redis: Redis) -> None:
    found = holds.every(redis)
    for hold in found:
        click.echo(hold.line())
    click.echo(f"{len(found)} hold{'s' if len(found) != 1 else ''}")


def deletions(settings: WorkerSettings, redis: Redis) -> None:
    """What would be deleted at Twilio and when; changes nothing."""
    policy = settings.delete_at_twilio
    click.echo(f"policy     DELETE_AT_TWILIO={policy}, DELETE_DELAY={settings.delete_delay}"
               + ("" if policy == deletion_schedule.AFTER_ARCHIVE else " (no new deletions are scheduled)"))
    found = deletion_schedule.pending(settings, redis)
    for pending in found:
        click.echo(pending.line())
    held = sum(1 for pending in found if pending.hold)
    click.echo(f"{len(found)} scheduled, {held} of them held")


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's)
        return "unknown"
