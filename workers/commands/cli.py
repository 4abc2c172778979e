"""The `recording-receiver` command: up, serve, worker, admin, reconcile, export, simulate, check, hold, release, holds, deletions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from console.settings import ConsoleSettings
from receiver.app.settings import ReceiverSettings
from receiver.kernel import logs
from receiver.kernel.settings import SharedSettings, redact_url
from workers.commands import up_record
from workers.commands.cli_errors import Commands, Mistake
from workers.commands.settings import Settings
from workers.commands.up_command import ROUTES
from workers.settings import WorkerSettings

if TYPE_CHECKING:
    from redis import Redis

    from workers.commands import check_lines

RoleSettings = TypeVar("RoleSettings", bound=SharedSettings)

SIMULATED = ROUTES  # every source's sample callback; their statuses are workers.commands.simulate.SOURCES
# The soft limit on open files `serve` asks for when the hard limit is unlimited.
OPEN_FILES_WITHOUT_CEILING = 65536


# The role each command's log lines carry (a command not named here goes by its own name).
ROLES = {"serve": "receiver", "admin": "console"}


def _settings(role: type[RoleSettings]) -> RoleSettings:
    """The command's own role's settings only: a mistake in another role's settings (say the
    console's) does not stop this one."""
    settings = role()
    command = click.get_current_context().info_name or "recording-receiver"
    logs.configure(settings.log_level, settings.log_format, role=ROLES.get(command, command))
    return settings


def _require_redis(settings: SharedSettings, up_runs_here: bool = False) -> None:
    if not settings.redis_configured:
        alternative = f", or start `recording-receiver up` (DATA_DIR {settings.data_dir})" if up_runs_here else ""
        raise Mistake(f"REDIS_URL (or REDIS_SENTINELS) is not set: set REDIS_URL=redis://host:6379/0{alternative}")


def _with_up_redis(settings: RoleSettings, err: bool = False) -> RoleSettings:
    """With no Redis configured, the Redis of an `up` running on DATA_DIR, said in one line."""
    if settings.redis_configured:
        return settings
    record = up_record.read(settings.data_dir)
    if record is None or not record.redis_url:
        return settings
    where = up_record.path_in(settings.data_dir)
    click.echo(f"redis      using the running `up`'s {redact_url(record.redis_url)} (REDIS_URL unset; from {where})", err=err)
    return settings.model_copy(update={"redis_url": record.redis_url})


def _refuse_taken_port(name: str, host: str, port: int, setting: str) -> None:
    from workers.commands import ports

    problem = ports.problem([ports.Listener(name, host, port, setting)])
    if problem:
        raise Mistake(problem)


@click.group(cls=Commands)
def main() -> None:
    """Catch every Twilio recording: verified callbacks in, archived recordings out."""


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Redis data and recordings (default ./data).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--workers", "worker_count", default=2, show_default=True, help="Worker processes.")
def up(data_dir: Path | None, host: str, port: int, worker_count: int) -> None:
    """Everything on one machine: Redis (embedded unless REDIS_URL or REDIS_SENTINELS is set), receiver, workers."""
    from workers.commands import up_command

    settings = _settings(Settings)
    up_command.run(settings, data_dir or settings.data_dir, host, port, worker_count)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--workers", "processes", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Receiver processes sharing the port (about one per core).")
def serve(host: str, port: int, processes: int) -> None:
    """The public callback receiver only."""
    from receiver.kernel.accounts import load_accounts
    from workers.commands import serve_processes

    settings = _settings(ReceiverSettings)
    _require_redis(settings)
    load_accounts(settings)  # a broken accounts file: one line now, not a traceback from uvicorn
    _refuse_taken_port("the receiver", host, port, "--port")
    _raise_open_files_limit()
    serve_processes.run(settings, host, port, processes)


def _raise_open_files_limit() -> None:
    """Soft limit on open files up to the hard one, as Go programs do by themselves: every
    connection holds one, and a soft 1024 (systemd's default, and containerd 2's and Docker
    25's for containers) let 1,100 slow connections make every legitimate callback fail."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, OPEN_FILES_WITHOUT_CEILING)
    if wanted <= soft:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError) as exc:  # e.g. above the kernel's nr_open: keep what we have
        logs.get("workers.commands.cli").warning("open files limit not raised", soft=soft, hard=hard, error=str(exc))


@main.command()
@click.option("--concurrency", type=int, default=None, help="Jobs at once per process (threads; default WORKER_THREADS=8).")
@click.option("--processes", default=1, show_default=True, help="Worker processes.")
@click.option("--scheduler/--no-scheduler", default=True, help="Run RQ's scheduler (retries, reconciler).")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker(concurrency: int | None, processes: int, scheduler: bool, burst: bool) -> None:
    """RQ workers that fetch, archive and react."""
    from workers.commands.supervisor import Supervisor
    from workers.runtime import runner

    settings = _settings(WorkerSettings)
    _require_redis(settings)
    if processes <= 1:
        runner.run(settings, with_scheduler=scheduler, burst=burst, threads=concurrency)
        return
    every = []
    for index in range(processes):
        args = ["worker"] + ([] if index == 0 and scheduler else ["--no-scheduler"]) + (["--burst"] if burst else [])
        args += ["--concurrency", str(concurrency)] if concurrency else []
        every.append(args)
    if burst:
        # A burst worker that finds the queue empty is done, not dead: the supervisor would
        # restart it forever, so the processes are simply awaited; Ctrl-C reaches them directly.
        children = [subprocess.Popen([sys.executable, "-m", "workers.commands.cli", *args]) for args in every]
        sys.exit(max(child.wait() for child in children))
    supervisor = Supervisor()
    for index, args in enumerate(every):
        supervisor.spawn(f"worker-{index}", args, dict(os.environ))
    sys.exit(supervisor.wait())


@main.command()
@click.argument("url", required=False)
@click.option("--source", default="voice", show_default=True, type=click.Choice(list(SIMULATED)), help="Which callback to send.")
@click.option("--status", default=None, help="The source's status or event (default: its completed one); see below.")
@click.option("--recording-sid", default=None, help="Reuse a SID (to see duplicates and ordering).")
@click.option("--unsigned", is_flag=True, help="Send it without X-Twilio-Signature (the receiver must refuse it).")
@click.option("--tamper", is_flag=True, help="Change a parameter after signing (the receiver must refuse it).")
def simulate(url: str | None, source: str, status: str | None, recording_sid: str | None, unsigned: bool, tamper: bool) -> None:
    """Send a sample callback of SOURCE to URL, signed with TWILIO_AUTH_TOKEN (default URL: the running `up`'s).

    \b
    statuses: voice      completed, in-progress, absent, failed
              video      recording-completed, recording-started, recording-failed, room-ended
              media      completed, processing, deleted, failed
              legacy     completed, hangup
    """
    from workers.commands import simulate_command

    settings = _settings(Settings)
    url = url or _up_receiver(settings, source)
    sys.exit(simulate_command.run(settings, url, source, status, recording_sid, unsigned=unsigned, tamper=tamper))


def _up_receiver(settings: Settings, source: str) -> str:
    """The callback URL of the `up` running on DATA_DIR, said in one line; a mistake when none runs."""
    record = up_record.read(settings.data_dir)
    if record is None:
        raise click.UsageError(f"give the receiver's callback URL (no `up` is running with DATA_DIR {settings.data_dir})")
    url = f"{record.receiver_url}/twilio/recordings/{source}"
    click.echo(f"receiver   {url} (the running `up`'s, from {up_record.path_in(settings.data_dir)})", err=True)
    return url


@main.command()
@click.option("--host", default=None, help="Default ADMIN_HOST (127.0.0.1).")
@click.option("--port", type=int, default=None, help="Default ADMIN_PORT (8001).")
def admin(host: str | None, port: int | None) -> None:
    """The admin console only (a separate app and port; never on the public one)."""
    from console import bind, server

    settings = _settings(ConsoleSettings)
    _require_redis(settings)
    host, port = host or settings.admin_host, port or settings.admin_port
    reasons = bind.problems(settings, host)
    if reasons:
        raise Mistake("console not started: " + "; ".join(reasons))
    _refuse_taken_port("the console", host, port, "--port or ADMIN_PORT")
    server.run(settings, host, port)


@main.command()
@click.option("--source", "sources", multiple=True, type=click.Choice(["voice", "video", "media", "legacy"]), help="Repeatable; default all.")
@click.option("--since", default=None, help="ISO 8601 date or datetime; default: the watermark.")
@click.option("--account", "accounts", multiple=True, help="Account SID (repeatable); default all configured.")
def reconcile(sources: tuple[str, ...], since: str | None, accounts: tuple[str, ...]) -> None:
    """One reconciliation pass: list recordings at Twilio and queue what no callback brought."""
    from redis.exceptions import RedisError

    from receiver.kernel.redis_client import sync_redis
    from workers.reconcile import reconciler
    from workers.twilio_rest.timestamps import parse_since

    settings = _with_up_redis(_settings(WorkerSettings), err=True)
    _require_redis(settings, up_runs_here=True)
    try:
        parse_since(since) if since else None
    except ValueError:
        raise click.BadParameter("expected an ISO 8601 date or datetime, e.g. 2026-11-01", param_hint="--since") from None
    try:
        sync_redis(settings, socket_connect_timeout=2).ping()
    except RedisError as exc:
        # The class only, as in `check`: some of redis-py's messages quote what they were given.
        raise Mistake(f"cannot reach Redis at {_redis_named(settings)} ({type(exc).__name__}): is it running?") from None
    report = reconciler.run_once(settings, sources=list(sources), since=since, accounts=list(accounts))
    click.echo(report.render())
    sys.exit(0 if report.ok else 1)


@main.command()
@click.option("--since", required=True, help="ISO 8601 date or datetime: the oldest recordings to export.")
@click.option("--until", default=None, help="ISO 8601 date or datetime: the newest (default: now).")
@click.option("--source", "sources", multiple=True, type=click.Choice(["voice", "video", "media", "legacy"]), help="Repeatable; default all.")
@click.option("--account", "accounts", multiple=True, help="Account SID (repeatable); default all configured.")
@click.option("--dry-run", is_flag=True, help="List and count per source and account; queue nothing.")
@click.option("--restart", is_flag=True, help="Start over instead of resuming a stopped export of the same window.")
def export(since: str, until: str | None, sources: tuple[str, ...], accounts: tuple[str, ...], dry_run: bool, restart: bool) -> None:
    """Archive every recording Twilio lists in a window that is not archived yet (resumable)."""
    from workers.commands import export_command

    settings = _with_up_redis(_settings(WorkerSettings), err=True)
    _redis_for(settings).close()
    export_command.run(settings, since, until, sources, accounts, dry_run, restart)


def _redis_for(settings: WorkerSettings) -> Redis:
    """Redis for a command that only reads or writes a few keys: one line when it does not answer."""
    from redis.exceptions import RedisError

    from receiver.kernel.redis_client import sync_redis

    _require_redis(settings, up_runs_here=True)
    redis = sync_redis(settings, socket_connect_timeout=2, socket_timeout=10)
    try:
        redis.ping()
    except RedisError as exc:
        raise Mistake(f"cannot reach Redis at {_redis_named(settings)} ({type(exc).__name__}): is it running?") from None
    return redis


@main.command()
@click.argument("sid")
@click.option("--reason", required=True, help="Why it is held (kept with the hold, shown everywhere).")
@click.option("--by", default=None, help="Who holds it (default: your user name).")
def hold(sid: str, reason: str, by: str | None) -> None:
    """Never delete recording SID at Twilio, or every recording of call, conference or room SID."""
    from workers.commands import holds_command

    holds_command.place(_redis_for(_with_up_redis(_settings(WorkerSettings), err=True)), sid, reason, by)


@main.command()
@click.argument("sid")
def release(sid: str) -> None:
    """Release the hold on SID: its deletion at Twilio, if scheduled, goes ahead."""
    from workers.commands import holds_command

    holds_command.release(_redis_for(_with_up_redis(_settings(WorkerSettings), err=True)), sid)


@main.command("holds")
def list_holds() -> None:
    """List every hold: SID, who, since when, why."""
    from workers.commands import holds_command

    holds_command.every(_redis_for(_with_up_redis(_settings(WorkerSettings), err=True)))


@main.command()
def deletions() -> None:
    """Dry run: every deletion at Twilio scheduled, when it is due, and which are held."""
    from workers.commands import holds_command

    settings = _with_up_redis(_settings(WorkerSettings), err=True)
    holds_command.deletions(settings, _redis_for(settings))


@main.command("webhooks")
def list_webhooks() -> None:
    """List webhook endpoints: ok, failing since when, or disabled and why."""
    from workers.commands import webhooks_command

    settings = _with_up_redis(_settings(WorkerSettings), err=True)
    webhooks_command.every(settings, _redis_for(settings))


@main.command("webhook-enable")
@click.argument("name")
def webhook_enable(name: str) -> None:
    """Enable webhook endpoint NAME again after it was disabled for failing."""
    from workers.commands import webhooks_command

    webhooks_command.enable(_redis_for(_with_up_redis(_settings(WorkerSettings), err=True)), name)


@main.command()
def check() -> None:
    """Validate the configuration and Redis, and print the URLs to paste into Twilio (exit 1 on a problem)."""
    from receiver.kernel.accounts import load_accounts
    from workers.commands import check_lines

    settings = _with_up_redis(_settings(Settings))
    findings = [check_lines.accounts(load_accounts(settings), settings), _redis_finding(settings),
                check_lines.public_base_url(settings), check_lines.storage(settings), check_lines.recording_keys(settings)]
    for finding in findings:
        if finding is not None:
            click.echo(finding.line)
    base = settings.public_base_url or "(PUBLIC_BASE_URL unset)"
    for route in ROUTES:
        click.echo(f"callback   {base}/twilio/recordings/{route}")
    sys.exit(0 if all(finding is None or finding.ok for finding in findings) else 1)


def _redis_finding(settings: SharedSettings) -> check_lines.Finding:
    from redis.exceptions import RedisError

    from receiver.kernel.redis_client import sync_redis
    from workers.commands.check_lines import Finding

    if not settings.redis_configured:
        return Finding("redis      REDIS_URL and REDIS_SENTINELS unset: `up` will start an embedded redis-server")
    where = _redis_named(settings)
    try:
        sync_redis(settings, socket_connect_timeout=2).ping()
    except RedisError as exc:
        # The exception's class only: some of redis-py's messages quote what they were given.
        return Finding(f"redis      unreachable at {where}: {type(exc).__name__}", ok=False)
    return Finding(f"redis      reachable at {where}")


def _redis_named(settings: SharedSettings) -> str:
    """The Redis that `check` tried, as an operator recognises it, with no password in it."""
    if settings.redis_sentinels:
        return f"master {settings.redis_sentinel_master} via sentinels {settings.redis_sentinels}"
    return redact_url(settings.redis_url or "")


if __name__ == "__main__":
    main()
