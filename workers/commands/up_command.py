"""`recording-receiver up`: everything on one machine, planned and checked before anything starts."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click
from pydantic import SecretStr

from receiver.kernel.settings import redact_url
from workers.commands import up_record
from workers.commands.cli_errors import Mistake
from workers.commands.settings import Settings

if TYPE_CHECKING:
    from workers.commands.supervisor import Supervisor

ROUTES = ("voice", "video", "media", "legacy")  # the callback routes, one per source


def run(settings: Settings, data_dir: Path, host: str, port: int, worker_count: int) -> None:
    """Start Redis (unless configured), receiver, workers and console; exit when they have stopped."""
    from workers.commands import embedded_redis
    from workers.commands.supervisor import Supervisor

    env = dict(os.environ, DATA_DIR=str(data_dir))
    redis_port = None if settings.redis_configured else embedded_redis.free_port()
    if redis_port is not None:
        # The URL is known before Redis starts, so the console's plan (which needs Redis) and the
        # port check both come before anything is started. Its password (the data directory's,
        # kept across restarts) reaches the children in their environment, never their arguments.
        try:
            password = embedded_redis.password_for(data_dir / "redis")
        except OSError as exc:
            raise Mistake(f"cannot use the data directory {data_dir}: {exc.strerror} (choose another with --data-dir)") from None
        env["REDIS_URL"] = embedded_redis.url_for(redis_port, password)
        settings = settings.model_copy(update={"redis_url": env["REDIS_URL"]})
    console = _plan_console(settings, env)
    _refuse_unusable_ports(host, port, console)
    if not settings.redis_sentinels:
        _record(data_dir, settings.redis_url or "", host, port)
    try:
        supervisor = Supervisor()
        if redis_port is not None:
            _start_embedded_redis(supervisor, data_dir / "redis", redis_port)
        _run_up(supervisor, settings, env, host, port, worker_count, data_dir, console)
    finally:
        up_record.remove(data_dir)


def _record(data_dir: Path, redis_url: str, host: str, port: int) -> None:
    """For check, reconcile and simulate in another terminal; holds the password, so mode 0600.
    Written before anything starts, so a failure here leaves nothing running."""
    try:
        up_record.write(data_dir, redis_url, f"http://{_url_host(_reachable(host))}:{port}")
    except OSError as exc:
        raise Mistake(f"cannot write {up_record.path_in(data_dir)}: {exc.strerror} (choose another --data-dir)") from None


def _reachable(host: str) -> str:
    """A listening address a client can connect to: the loopback one for "every address"."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104 -- maps it away


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _run_up(supervisor: Supervisor, settings: Settings, env: dict[str, str], host: str, port: int,
            worker_count: int, data_dir: Path, console: _ConsolePlan) -> None:
    supervisor.spawn("receiver", ["serve", "--host", host, "--port", str(port)], env)
    for index in range(worker_count):
        args = ["worker"] if index == 0 else ["worker", "--no-scheduler"]
        supervisor.spawn(f"worker-{index}", args, env)
    if console.starts:
        supervisor.spawn("console", ["admin", "--host", console.host, "--port", str(console.port)], console.env)
    base = settings.public_base_url or f"http://{host}:{port}"
    for route in ROUTES:
        click.echo(f"callback   {base}/twilio/recordings/{route}")
    click.echo(f"health     http://{host}:{port}/healthz")
    click.echo(f"storage    {settings.storage_url or settings.storage_dir or data_dir / 'recordings'}")
    for line in console.lines:
        click.echo(line)
    click.echo("Press Ctrl-C to stop.")
    sys.exit(supervisor.wait())


def _start_embedded_redis(supervisor: Supervisor, redis_dir: Path, port: int) -> None:
    from workers.commands import embedded_redis

    try:
        proc, url = embedded_redis.start(redis_dir, port)
    except (RuntimeError, OSError) as exc:  # no server binary, or it would not start
        raise Mistake(f"the embedded Redis did not start: {exc} (or set REDIS_URL to a Redis of yours)") from None
    supervisor.adopt("redis", _Restartable(proc, lambda: embedded_redis.start(redis_dir, port)[0]))
    password_file = redis_dir / embedded_redis.PASSWORD_FILE
    click.echo(f"redis      {redact_url(url)} (embedded, append-only file in {redis_dir}, password in {password_file})")


@dataclass(frozen=True)
class _ConsolePlan:
    """Whether `up` starts the console, where, with what environment, and its lines in the banner."""

    starts: bool
    host: str
    port: int
    env: dict[str, str]
    lines: list[str]


def _plan_console(settings: Settings, env: dict[str, str]) -> _ConsolePlan:
    """Decide on the admin console for `up`; with no credentials configured, make a one-off password
    for this run (loopback only) and show it once, so the console works on the first try."""
    from console import bind

    host, port = settings.admin_host, settings.admin_port
    # Its own copy: the generated password is the console's alone.
    env = dict(env)
    lines = []
    if bind.is_loopback(host) and not (settings.admin_username or settings.admin_token or settings.admin_insecure_no_auth):
        password = secrets.token_urlsafe(12)
        env.update(ADMIN_USERNAME="admin", ADMIN_PASSWORD=password)
        settings = settings.model_copy(update={"admin_username": "admin", "admin_password": SecretStr(password)})
        lines.append(f"login      admin / {password}  (generated for this run; set ADMIN_USERNAME/ADMIN_PASSWORD to choose)")
    reasons = bind.problems(settings, host)
    if reasons:
        return _ConsolePlan(False, host, port, env, [f"console    not started: {'; '.join(reasons)}"])
    return _ConsolePlan(True, host, port, env, [f"console    http://{host}:{port}/", *lines])


def _refuse_unusable_ports(host: str, port: int, console: _ConsolePlan) -> None:
    """Exit with one line on stderr when a server of `up` could not listen: otherwise the banner
    would promise URLs that someone else's server answers, while ours restarts in a loop."""
    from workers.commands import ports

    listeners = [ports.Listener("the receiver", host, port, "--port")]
    if console.starts:
        listeners.append(ports.Listener("the console", console.host, console.port, "ADMIN_PORT"))
    problem = ports.problem(listeners)
    if problem:
        raise Mistake(problem)


class _Restartable:
    """The first start already happened (to learn the URL); later starts call `again`."""

    def __init__(self, first: subprocess.Popen[bytes], again: Callable[[], subprocess.Popen[bytes]]) -> None:
        self._first: subprocess.Popen[bytes] | None = first
        self._again = again

    def __call__(self) -> subprocess.Popen[bytes]:
        first, self._first = self._first, None
        return first if first is not None else self._again()


