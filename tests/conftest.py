"""Shared fixtures: a real redis-server, real uvicorn servers, the Twilio stand-in, settings."""

from __future__ import annotations

import contextlib
import gc
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from redis import Redis

from receiver.kernel import stats
from tests.support.servers import RedisProcess, listening_socket, serve_app, wait_for
from tests.support.twilio_signing import sign
from workers.commands.settings import Settings

# The console's fixtures serve its unit, end-to-end and README tests, which live in different folders.
pytest_plugins = ["tests.support.console.fixtures"]

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token-primary"
SECONDARY_TOKEN = "test-auth-token-secondary"

# Property tests check what comes out, never how fast: Hypothesis's default 200 ms deadline per
# example and its too_slow health check fail them whenever a busy machine deschedules the run.
hypothesis_settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("suite")


@pytest.fixture(autouse=True)
def _leaks_reported_here() -> Iterator[None]:
    """Collect garbage after each test, so an unclosed socket, file or child (a ResourceWarning,
    an error under filterwarnings) fails the test that leaked it, not whichever test runs next."""
    yield
    gc.collect()


@pytest.fixture(scope="session")
def redis_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    proc = RedisProcess(tmp_path_factory.mktemp("redis"))
    yield proc
    proc.stop()


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port with someone else's server listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of this test's own, so stopping or killing it disturbs nobody else."""
    proc = RedisProcess(tmp_path / "redis")
    yield proc
    if proc.proc.poll() is None:
        proc.stop()


@pytest.fixture
def redis_url(redis_proc: RedisProcess) -> str:
    if not redis_proc.alive():
        redis_proc.start()
    redis_proc.client().flushall()
    return redis_proc.url


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def make_settings(redis_url: str, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = dict(
            redis_url=redis_url,
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            data_dir=tmp_path / "data",
            log_format="json",
        )
        values.update(overrides)
        return Settings(**values)

    return make


@dataclass
class Receiver:
    """A receiver under uvicorn, with the URL Twilio would call for each route."""

    base_url: str
    settings: Settings

    def url(self, source: str = "voice", query: str = "") -> str:
        return f"{self.base_url}/twilio/recordings/{source}" + (f"?{query}" if query else "")

    def post(self, url: str, params: list[tuple[str, str]] | dict[str, str], token: str = AUTH_TOKEN, **kw: Any) -> httpx.Response:
        pairs = list(params.items()) if isinstance(params, dict) else params
        headers = {"X-Twilio-Signature": sign(token, url, pairs), **kw.pop("headers", {})}
        form: dict[str, list[str]] = {}
        for name, value in pairs:
            form.setdefault(name, []).append(value)
        return httpx.post(url, data=form, headers=headers, timeout=10, **kw)


@pytest.fixture
def start_receiver() -> Iterator[Callable[[Settings], Receiver]]:
    """Start a receiver whose PUBLIC_BASE_URL is its own loopback address unless told otherwise."""
    stack = contextlib.ExitStack()

    def start(settings: Settings) -> Receiver:
        from receiver.app.factory import create_app

        sock = listening_socket()
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        if settings.public_base_url is None and not settings.trust_proxy_headers:
            settings = settings.model_copy(update={"public_base_url": base})
        stack.enter_context(serve_app(create_app(settings), sock=sock))
        return Receiver(base, settings)

    with stack:
        yield start


@pytest.fixture
def standin() -> Iterator[Any]:
    """The Twilio stand-in with our test account, on its own loopback port."""
    from tests.standin import StandinServer

    with StandinServer() as server:
        server.state.add_account(sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
        yield server


@pytest.fixture
def pipeline_settings(make_settings: Callable[..., Settings], standin: Any) -> Callable[..., Settings]:
    """Settings whose Twilio REST hosts are the stand-in; retries immediate unless told otherwise."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = dict(
            twilio_api_base_url=standin.base_url,
            twilio_video_base_url=standin.base_url,
            twilio_media_base_url=standin.base_url,
            retry_base_seconds=0,
            twilio_timeout_seconds=5,
            worker_threads=2,
        )
        values.update(overrides)
        return make_settings(**values)

    return make


def counters_written(redis: Redis) -> None:
    """Wait until a receiver has written its counters after now: what it counted so far is in Redis."""
    since = time.time()
    wait_for(lambda: redis.zcount(stats.RECEIVERS_SEEN, since, "+inf") > 0, timeout=30, what="the receiver's counters to be written")


def drain(settings: Settings) -> None:
    """Run a real RQ worker (ours) until the queue is empty, and leave the test process as it was."""
    from workers.jobs import context
    from workers.runtime import runner

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous = context._current
    try:
        runner.run(settings, with_scheduler=False, burst=True)
    finally:
        # The pool takes SIGINT and SIGTERM for a worker process's warm shutdown and keeps them
        # after it returns: Ctrl-C, or CI's SIGTERM, would then reach a finished pool, not pytest.
        for sig, handler in handlers.items():
            if handler is not None:  # None: not set from Python, so nothing of ours to give back
                signal.signal(sig, handler)
        # And the context it installed names this test's stand-in and storage; a later test's
        # jobs must never run with it, whichever tests happened to run before.
        context._current = previous
