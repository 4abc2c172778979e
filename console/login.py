"""The login page, logout, and a brake on password guessing."""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import time
from collections import deque

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from console import context, csrf
from console.auth import LOGIN_COOKIE, SESSION_COOKIE
from console.render import safe_next, url
from receiver import logs

log = logs.get("console.login")

MAX_FAILURES = 10
WINDOW_SECONDS = 600
FAILURE_DELAY_SECONDS = 0.5


class Throttle:
    """Failed logins per client address in a sliding window, in this process (a brake, not a wall)."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}

    def blocked(self, client: str) -> bool:
        recent = self._failures.get(client)
        now = time.monotonic()
        while recent and now - recent[0] > WINDOW_SECONDS:
            recent.popleft()
        return recent is not None and len(recent) >= MAX_FAILURES

    def failed(self, client: str) -> None:
        if len(self._failures) > 10_000:
            self._failures.clear()  # Bounded memory under a spray from many addresses.
        self._failures.setdefault(client, deque()).append(time.monotonic())

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


throttle = Throttle()
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{32}")


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _form_page(request: Request, error: str = "", status: int = 200, username: str = "") -> Response:
    """The login form with a fresh double-submit token (cookie + hidden field) against login CSRF."""
    console = context.of(request)
    # Reuse the browser's token: another tab, or a stray request redirected here, must not
    # invalidate a form already on screen.
    token = request.cookies.get(LOGIN_COOKIE, "")
    if not _TOKEN_SHAPE.fullmatch(token):
        token = secrets.token_urlsafe(24)
    response = console.renderer.page(
        request, "login.html", status=status, error=error, login_token=token, username=username,
        next=safe_next(request.query_params.get("next")), has_password=console.auth.has_password,
        has_token=console.auth.has_token,
    )
    response.headers.append("set-cookie", console.auth.cookie(request, LOGIN_COOKIE, token, max_age=3600))
    return response


async def login_page(request: Request) -> Response:
    if request.scope.get("state", {}).get("identity") is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return _form_page(request)


async def login_submit(request: Request) -> Response:
    console = context.of(request)
    form = await request.form(max_files=0, max_fields=10)
    username, password = str(form.get("username") or "")[:200], str(form.get("password") or "")[:1000]
    supplied, expected = str(form.get(csrf.FIELD) or ""), request.cookies.get(LOGIN_COOKIE, "")
    if not supplied or not expected or not hmac.compare_digest(supplied.encode(), expected.encode()):
        return _form_page(request, "The sign-in form expired. Please sign in again.", status=403, username=username)
    client = _client(request)
    if throttle.blocked(client):
        log.warning("login refused: too many failures", client=client)
        return _form_page(request, "Too many failed attempts. Wait a few minutes.", status=429, username=username)
    user = console.auth.check_login(username, password)
    if user is None:
        throttle.failed(client)
        log.warning("login failed", username=username[:40], client=client)
        await asyncio.sleep(FAILURE_DELAY_SECONDS)
        return _form_page(request, "Wrong username or password.", status=401, username=username)
    throttle.succeeded(client)
    value, _ = console.auth.issue(user)
    log.info("login", user=user, client=client)
    response = RedirectResponse(safe_next(str(form.get("next") or "")), status_code=303)
    response.headers.append("set-cookie", console.auth.cookie(request, SESSION_COOKIE, value))
    response.headers.append("set-cookie", console.auth.cookie(request, LOGIN_COOKIE, "", max_age=0))
    return response


async def logout(request: Request) -> Response:
    console = context.of(request)
    who, _ = await csrf.checked_form(request)
    log.info("logout", user=who.user)
    response = RedirectResponse(url("/login", notice="logged_out"), status_code=303)
    response.headers.append("set-cookie", console.auth.cookie(request, SESSION_COOKIE, "", max_age=0))
    return response
