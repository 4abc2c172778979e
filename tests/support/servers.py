"""Runs real servers for tests: an ASGI app under uvicorn on a free loopback port, redis-server."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from redis import Redis
from redis.exceptions import RedisError

from workers.commands import embedded_redis


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: str = "condition") -> Any:
    """Poll until `condition()` is truthy; the deadline turns a hang into a clear failure."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def wait_for_count(
    count: Callable[[], int], target: int, stall: float = 30.0, interval: float = 0.05, what: str = "work"
) -> int:
    """Poll until `count()` reaches `target`. How fast the work goes is the machine's business; it
    fails only when the count stops growing for `stall` seconds, i.e. when the work is stuck."""
    best, moved = count(), time.monotonic()
    while best < target:
        time.sleep(interval)
        now = count()
        if now > best:
            best, moved = now, time.monotonic()
        elif time.monotonic() - moved > stall:
            raise AssertionError(f"{what}: stuck at {best} of {target} for {stall}s")
    return best


def answers_200(url: str) -> bool:
    """True when a GET of `url` answers 200 now; for `wait_for` while a server starts."""
    try:
        return httpx.get(url, timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def free_port() -> int:
    """A port free now, for a server in another process; in this one, hold a `listening_socket`
    instead: between this returning and the bind, any process may take the port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_socket(port: int = 0) -> socket.socket:
    """A loopback socket already bound and listening (on a free port by default), for `serve_app`."""
    return socket.create_server(("127.0.0.1", port))


@contextlib.contextmanager
def serve_app(app: Any, port: int | None = None, sock: socket.socket | None = None, **config: Any) -> Iterator[str]:
    """uvicorn in a thread, on `sock` or a socket bound here and now; yields the base URL once the
    server accepts connections. Bound before uvicorn starts, the port is never briefly free for
    another test run on the machine to take."""
    sock = sock or listening_socket(port or 0)
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), what="uvicorn to start")
        if not server.started:
            raise RuntimeError("uvicorn failed to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


class RedisProcess:
    """A real redis-server on a free port, stoppable and restartable with its data kept."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.proc, self.url = embedded_redis.start(data_dir, self.port)

    def client(self) -> Redis:
        return Redis.from_url(self.url)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)

    def start(self) -> None:
        self.proc, self.url = embedded_redis.start(self.data_dir, self.port)

    def alive(self) -> bool:
        try:
            return bool(self.client().ping())
        except RedisError:
            return False
