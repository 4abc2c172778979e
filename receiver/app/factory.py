"""The public ASGI app: callback routes per source plus health checks, wired in one factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp

from receiver.app.asgi_io import Receive, Scope, Send
from receiver.app.body_deadline import BodyDeadlines
from receiver.app.callbacks import CallbackEndpoint, Deps
from receiver.app.counters import Counters
from receiver.app.delivery import Delivery
from receiver.app.enqueue import Enqueuer
from receiver.app.health import NO_AUTH_TOKEN, healthz, readyz
from receiver.app.redis_pipe.choice import open_pipe
from receiver.app.settings import ReceiverSettings
from receiver.app.signature_diagnosis import Doctor
from receiver.app.sources import Parser, legacy, media, video, voice
from receiver.app.spool import Spool
from receiver.kernel import logs
from receiver.kernel.accounts import has_tokens, load_accounts
from receiver.kernel.errors import RecordingReceiverError
from receiver.kernel.events import Source
from receiver.kernel.job_template import JobTemplate
from receiver.kernel.redis_client import aclose, async_redis

PARSERS: dict[Source, Parser] = {
    Source.VOICE: voice.parse,
    Source.VIDEO: video.parse,
    Source.MEDIA: media.parse,
    Source.LEGACY: legacy.parse,
}

log = logs.get("receiver.app.factory")


def create_app(settings: ReceiverSettings | None = None) -> FastPath:
    settings = settings or ReceiverSettings()
    logs.configure(settings.log_level, settings.log_format, role="receiver")
    if not settings.redis_configured:
        raise ValueError("REDIS_URL (or REDIS_SENTINELS) is not set (use `recording-receiver up` for an embedded Redis)")
    accounts = load_accounts(settings)
    redis = async_redis(settings, socket_timeout=2.0, socket_connect_timeout=2.0)
    template = JobTemplate(settings.queue_name, settings.job_timeout_seconds, settings.retry_max)
    spool = Spool(settings.spool_path)
    counters = Counters(redis)
    pipe = open_pipe(settings)
    enqueuer = Enqueuer(
        redis, pipe, template, settings.ledger_ttl_seconds, settings.spool_after_seconds, settings.redis_wait_replicas,
        observe=counters.observe_batch,
    )
    delivery = Delivery(enqueuer, spool, settings.spool_after_seconds, redis)
    counters.name = delivery.name
    counters.report_spool(delivery.depth)
    deps = Deps(
        settings=settings, accounts=accounts, delivery=delivery, counters=counters,
        deadlines=BodyDeadlines(settings.body_timeout_seconds), doctor=Doctor(settings.signature_diagnoses_per_second),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        refuse_bypassed_middleware(app)
        if not settings.public_base_url and not settings.trust_proxy_headers:
            log.warning("PUBLIC_BASE_URL is not set: signatures are checked against the Host header")
        if not has_tokens(accounts, settings):
            log.warning(NO_AUTH_TOKEN)
        background = [
            asyncio.create_task(delivery.run_drainer()),
            asyncio.create_task(deps.counters.run_flusher()),
            asyncio.create_task(deps.deadlines.run()),
        ]
        yield
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await deps.counters.close()
        with contextlib.suppress(Exception):
            # A last attempt, so a clean shutdown leaves nothing behind when Redis is up.
            await asyncio.wait_for(delivery.drain_once(), 5.0)
        spool.close()
        await pipe.aclose()
        await aclose(redis)

    callbacks = {f"/twilio/recordings/{source.value}": CallbackEndpoint(source, parser, deps) for source, parser in PARSERS.items()}
    routes = [Route(path, endpoint, methods=["GET", "POST"]) for path, endpoint in callbacks.items()]
    routes += [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.redis = redis
    app.state.deps = deps
    return FastPath(app, callbacks)


class BypassedMiddleware(RecordingReceiverError, RuntimeError):
    """Middleware was added where callback POSTs would never pass through it."""


def refuse_bypassed_middleware(app: Starlette) -> None:
    """Fails the start (uvicorn exits with this line) when middleware was added to the inner
    Starlette app: callback POSTs go around it, so an auth, audit or tracing layer would silently
    miss exactly the requests that matter. `FastPath.add_middleware` puts it around every route."""
    if app.user_middleware:
        names = ", ".join(getattr(m.cls, "__name__", repr(m.cls)) for m in app.user_middleware)
        raise BypassedMiddleware(
            f"middleware {names} was added to the inner Starlette app, which callback POSTs bypass: "
            "add it with create_app(...).add_middleware(...) instead, which wraps every route"
        )


class FastPath:
    """Sends callback POSTs straight to their endpoint, everything else through Starlette.

    Starlette's middleware and routing were a quarter of a callback's cost (profiled); the
    callback endpoints are plain ASGI apps that never raise, so for the one hot request they are
    skipped. Routes, methods (405), health checks and the lifespan stay Starlette's. Middleware
    goes around the whole of it (`add_middleware`), so it sees callbacks too; middleware added to
    the inner Starlette app would not, and is refused at start (`refuse_bypassed_middleware`).
    """

    def __init__(self, app: Starlette, callbacks: dict[str, CallbackEndpoint]) -> None:
        self.app = app
        self.state = app.state
        self._callbacks = callbacks
        self._stack: ASGIApp = self._dispatch
        self._started = False

    def add_middleware(self, middleware_class: Callable[..., ASGIApp], *args: Any, **kwargs: Any) -> None:
        """Like Starlette's: the last one added is the outermost, and every request passes through
        it, callback POSTs included."""
        if self._started:
            raise RuntimeError("Cannot add middleware after the application has started")
        self._stack = middleware_class(self._stack, *args, **kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._started = True
        await self._stack(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._callbacks.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)
