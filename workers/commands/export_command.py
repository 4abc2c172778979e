"""The `export` command: plan from the options, Ctrl-C as a clean stop, progress on a terminal or as plain lines."""

from __future__ import annotations

import shutil
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from types import FrameType

import click

from receiver.kernel.events import Source
from workers.commands.cli_errors import Mistake
from workers.export import report
from workers.export.exporter import Exporter, Progress
from workers.export.plan import Plan
from workers.export.state import ExportBusy
from workers.jobs.context import WorkerContext
from workers.settings import WorkerSettings
from workers.twilio_rest.timestamps import parse_since

# Piped (a log, CI, `tee`): a plain line this often instead of a line redrawn in place.
PLAIN_EVERY_SECONDS = 5.0
STOPPED = 130


def _moment(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_since(value)
    except ValueError:
        raise click.BadParameter("expected an ISO 8601 date or datetime, e.g. 2019-01-01", param_hint=option) from None


def plan_from(ctx: WorkerContext, since: str, until: str | None, sources: Sequence[str], accounts: Sequence[str]) -> Plan:
    start, end = _moment(since, "--since"), _moment(until, "--until")
    assert start is not None
    if end is not None and end < start:
        raise Mistake("--until is before --since: nothing to export")
    chosen = []
    for sid in dict.fromkeys(accounts):
        account = ctx.accounts.get(sid)
        if account is None:
            raise Mistake(f"account {sid[:34]} is not configured (TWILIO_ACCOUNT_SID, TWILIO_ACCOUNTS)")
        chosen.append(account)
    if not accounts:
        chosen = list(ctx.accounts)
        if not chosen:
            raise Mistake("no Twilio account is configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    picked = tuple(Source(s) for s in dict.fromkeys(sources)) or tuple(Source)
    return Plan(start, end, picked, tuple(chosen))


class Display:
    """A line redrawn in place on a terminal; plain lines every few seconds when piped."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self._last_plain = 0.0

    def __call__(self, progress: Progress) -> None:
        text = report.line(progress)
        if self.tty:
            width = shutil.get_terminal_size().columns
            click.echo("\r\x1b[K" + text[: max(width - 1, 20)], nl=False)
            return
        now = time.monotonic()
        if now - self._last_plain >= PLAIN_EVERY_SECONDS:
            self._last_plain = now
            click.echo(f"{time.strftime('%H:%M:%S')} {text}")

    def end(self) -> None:
        if self.tty:
            click.echo("")


def run(settings: WorkerSettings, since: str, until: str | None, sources: Sequence[str], accounts: Sequence[str],
        dry_run: bool, restart: bool) -> None:
    ctx = WorkerContext(settings)
    plan = plan_from(ctx, since, until, sources, accounts)
    stop = threading.Event()
    display = Display(sys.stdout.isatty())

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        stop.set()
        # A second Ctrl-C is the usual one: stop at once (the cursor is as of the last batch).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        click.echo("\nstopping: finishing this batch and saving the cursor (Ctrl-C again to quit at once)", err=True)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        progress = Exporter(ctx, plan, stop, display, dry_run=dry_run).run(restart=restart)
    except ExportBusy as exc:
        raise Mistake(str(exc)) from None
    finally:
        signal.signal(signal.SIGINT, previous)
        display.end()
        ctx.close()
    click.echo(report.render(progress))
    if progress.state == "stopped" and stop.is_set():
        sys.exit(STOPPED)
    failed = progress.total("failed") or any(row.error for row in progress.rows)
    sys.exit(1 if failed or progress.state != "finished" else 0)
