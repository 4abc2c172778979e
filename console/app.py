"""The console's ASGI app, wired in one factory; a separate app and port from the public receiver."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from console import api, confirm, context, hold_actions, login, media_routes, pages, webhooks
from console.actions import Actions
from console.archive import Archive
from console.auth import Authenticator
from console.bind import auth_is_open, problems
from console.brake import Brake, Policy
from console.failures import FailureIndex
from console.guard import Guard, is_machine_path
from console.metrics import registry_for
from console.queries import Recordings
from console.render import Renderer
from console.sessions import Sessions
from console.settings import ConsoleSettings
from console.signin import Doorman
from receiver.kernel import logs
from receiver.kernel.redis_client import sync_redis

log = logs.get("console.app")
STATIC = Path(__file__).parent / "static"
_JOB = "/jobs/{job_id:str}/{verb:str}"
_CAUSE = "/failures/{cause_id:str}/{verb:str}"


async def healthz(request: Request) -> Response:
    """For probes: says the process answers, and nothing else."""
    return PlainTextResponse("ok\n")


async def favicon(request: Request) -> Response:
    # Browsers ask for it on every page, signed in or not; answering keeps them off the login redirect.
    return Response(status_code=204)


def routes() -> list[Route | Mount]:
    return [
        Route("/", pages.overview_page, methods=["GET"]),
        Route("/recordings", pages.recordings_page, methods=["GET"]),
        Route("/recordings/{source:str}/{sid:str}", pages.recording_page, methods=["GET"]),
        Route("/recordings/{source:str}/{sid:str}/media", media_routes.recording_media, methods=["GET"]),
        Route("/recordings/{source:str}/{sid:str}/hold", hold_actions.hold_perform, methods=["POST"]),
        Route("/recordings/{source:str}/{sid:str}/release", hold_actions.release_perform, methods=["POST"]),
        Route("/failures", pages.failures_page, methods=["GET"]),
        Route("/failures/{cause_id:str}", pages.cause_page, methods=["GET"]),
        Route(_CAUSE, confirm.cause_confirm, methods=["GET"]),
        Route(_CAUSE, confirm.cause_perform, methods=["POST"]),
        Route(_JOB, confirm.job_confirm, methods=["GET"]),
        Route(_JOB, confirm.job_perform, methods=["POST"]),
        Route("/workers", pages.workers_page, methods=["GET"]),
        Route("/webhooks", webhooks.webhooks_page, methods=["GET"]),
        Route("/webhooks/{msg_id:str}", webhooks.delivery_page, methods=["GET"]),
        Route("/webhooks/{msg_id:str}/replay", webhooks.replay_perform, methods=["POST"]),
        Route("/webhooks/endpoints/{name:str}/enable", webhooks.enable_perform, methods=["POST"]),
        Route("/login", login.login_page, methods=["GET"]),
        Route("/login", login.login_submit, methods=["POST"]),
        Route("/logout", login.logout, methods=["POST"]),
        Route("/logout/everywhere", login.logout_everywhere, methods=["POST"]),
        Route("/api/overview", api.overview_json, methods=["GET"]),
        Route("/api/recordings", api.recordings_json, methods=["GET"]),
        Route("/api/recordings/{source:str}/{sid:str}", api.recording_json, methods=["GET"]),
        Route("/api/failures", api.failures_json, methods=["GET"]),
        Route("/api/failures/{cause_id:str}", api.cause_json, methods=["GET"]),
        Route("/api/failures/{cause_id:str}/{verb:str}", api.cause_action, methods=["POST"]),
        Route("/api/jobs/{job_id:str}/{verb:str}", api.job_action, methods=["POST"]),
        Route("/api/workers", api.workers_json, methods=["GET"]),
        Route("/metrics", api.metrics_endpoint, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/favicon.ico", favicon, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


def create_app(
    settings: ConsoleSettings | None = None, brake_policy: Policy | None = None, clock: Callable[[], float] = time.time,
) -> Starlette:
    """The console for `settings.admin_host`; refuses a configuration `console.bind` refuses.

    `brake_policy` and `clock` are for tests that play out the sign-in brake's delays.
    """
    settings = settings or ConsoleSettings()
    errors = problems(settings, settings.admin_host)
    if errors:
        raise ValueError("; ".join(errors))
    open_access = auth_is_open(settings, settings.admin_host)
    auth = Authenticator(settings, open_access)
    redis = sync_redis(settings, socket_timeout=5.0, socket_connect_timeout=3.0)
    failed = FailureIndex(redis, settings.queue_name)
    brake, sessions = Brake(redis, brake_policy, clock), Sessions(redis, auth.max_age)
    console = context.Console(
        settings=settings, redis=redis, auth=auth, renderer=Renderer(open_access),
        recordings=Recordings(redis, settings.queue_name), failures=failed,
        actions=Actions(redis, settings.queue_name, settings.retry_max, failed),
        metrics=registry_for(redis, settings.queue_name), brake=brake, sessions=sessions,
        archive=Archive(settings, settings.admin_media_link_seconds),
    )
    doorman = Doorman(auth, brake, sessions, settings.trusted_proxies)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if auth.ephemeral_key:
            log.warning("ADMIN_SECRET_KEY is not set: sessions are signed with a random key and end when the console restarts")
        if open_access:
            log.warning("console authentication is OFF (ADMIN_INSECURE_NO_AUTH on a loopback bind)")
        yield
        console.archive.close()
        redis.close()

    app = Starlette(
        routes=routes(), lifespan=lifespan, middleware=[Middleware(Guard, auth=auth, doorman=doorman)],
        exception_handlers={HTTPException: _http_error, RedisError: _redis_error},
    )
    app.state.console = console
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(request, exc.status_code, exc.detail)


async def _redis_error(request: Request, exc: Exception) -> Response:
    log.warning("redis unavailable", error=type(exc).__name__, path=request.url.path)
    return _error(request, 503, f"Redis is unreachable ({type(exc).__name__}); the data cannot be read right now.")


def _error(request: Request, status: int, message: str) -> Response:
    if is_machine_path(request.url.path):
        return JSONResponse({"error": message}, status_code=status)
    return context.of(request).renderer.page(request, "error.html", status=status, status_code=status, message=message)
