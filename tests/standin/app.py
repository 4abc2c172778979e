"""Assembles the Twilio stand-in Starlette app from the per-API route modules."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from . import (
    control_routes,
    legacy_routes,
    media_routes,
    signed_routes,
    video_routes,
    voice_routes,
)
from .errors import ApiError, api_error_handler, http_error_handler, not_found
from .middleware import StandinMiddleware
from .state import StandinState

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def unknown_path(request: Request) -> None:
    raise not_found(request.url.path)


def create_app(state: StandinState) -> Starlette:
    """The ASGI app; `state` is shared, so tests may mutate it while uvicorn serves."""
    routes: list[BaseRoute] = [
        *control_routes.routes, *voice_routes.routes, *video_routes.routes,
        *media_routes.routes, *legacy_routes.routes, *signed_routes.routes,
        # Last: anything unmatched answers Twilio's JSON 404 rather than Starlette's text one.
        Route("/{path:path}", unknown_path, methods=ALL_METHODS),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(StandinMiddleware, state=state)],
        exception_handlers={ApiError: api_error_handler, HTTPException: http_error_handler},
    )
    app.state.standin = state
    return app
