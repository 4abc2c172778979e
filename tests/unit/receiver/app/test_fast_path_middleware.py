"""Middleware on the receiver: around every route, callback POSTs included, or refused at start."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response

from receiver.app.factory import create_app
from tests.conftest import Receiver
from tests.support.servers import listening_socket, serve_app
from tests.unit.receiver.app.test_receiver_voice import voice
from workers.commands.settings import Settings

seen: list[tuple[str, str]] = []


class Audit(BaseHTTPMiddleware):
    """What a user adds: an audit line and a header on every request."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        seen.append((request.method, request.url.path))
        response = await call_next(request)
        response.headers["x-audited"] = "yes"
        return response


def test_middleware_added_to_the_app_sees_callback_posts(make_settings: Callable[..., Settings]) -> None:
    seen.clear()
    sock = listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = make_settings(public_base_url=base)
    app = create_app(settings)
    app.add_middleware(Audit)
    with serve_app(app, sock=sock):
        answer = Receiver(base, settings).post(f"{base}/twilio/recordings/voice", voice())
        health = httpx.get(f"{base}/healthz")
    assert answer.status_code == 204 and answer.headers["x-audited"] == "yes"
    assert health.headers["x-audited"] == "yes"
    assert ("POST", "/twilio/recordings/voice") in seen and ("GET", "/healthz") in seen


def test_middleware_added_to_the_inner_starlette_app_is_refused_at_start(
    make_settings: Callable[..., Settings], capfd: pytest.CaptureFixture[str]
) -> None:
    app = create_app(make_settings())
    app.app.add_middleware(Audit)  # callback POSTs would go around it
    with pytest.raises(RuntimeError, match="uvicorn failed to start"), serve_app(app):
        pass
    assert "middleware Audit was added to the inner Starlette app, which callback POSTs bypass" in capfd.readouterr().err


def test_no_middleware_after_the_start(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings())
    with serve_app(app) as base:
        httpx.get(f"{base}/healthz")
        with pytest.raises(RuntimeError, match="after the application has started"):
            app.add_middleware(Audit)
