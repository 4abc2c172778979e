"""The login page, logout, and signing a user out of every browser at once."""

from __future__ import annotations

import hmac
import re
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from console import context, csrf
from console.auth import LOGIN_COOKIE, SESSION_COOKIE
from console.render import safe_next, url
from console.signin import Braked, attempt, client_of
from receiver.kernel import logs

log = logs.get("console.login")

_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{32}")


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
    user = await attempt(console.brake, request, username, lambda: console.auth.check_login(username, password), "form")
    if isinstance(user, Braked):
        page = _form_page(request, f"Too many failed attempts. Try again in {user.retry_after} s.", 429, username)
        page.headers["retry-after"] = str(user.retry_after)
        return page
    if user is None:
        return _form_page(request, "Wrong username or password.", status=401, username=username)
    session = await run_in_threadpool(console.sessions.start, user)
    value, _ = console.auth.issue(user, session)
    log.info("login", user=user, client=client_of(request))
    response = RedirectResponse(safe_next(str(form.get("next") or "")), status_code=303)
    response.headers.append("set-cookie", console.auth.cookie(request, SESSION_COOKIE, value))
    response.headers.append("set-cookie", console.auth.cookie(request, LOGIN_COOKIE, "", max_age=0))
    return response


async def logout(request: Request) -> Response:
    console = context.of(request)
    who, _ = await csrf.checked_form(request)
    # Ended on the server, not only forgotten by this browser: a copied cookie is dead too.
    await run_in_threadpool(console.sessions.end, who.session)
    log.info("logout", user=who.user)
    return _signed_out(request, "logged_out")


async def logout_everywhere(request: Request) -> Response:
    console = context.of(request)
    who, _ = await csrf.checked_form(request)
    await run_in_threadpool(console.sessions.end_all, who.user)
    await run_in_threadpool(console.sessions.end, who.session)
    log.info("logout everywhere", user=who.user)
    return _signed_out(request, "logged_out_everywhere")


def _signed_out(request: Request, notice: str) -> Response:
    response = RedirectResponse(url("/login", notice=notice), status_code=303)
    response.headers.append("set-cookie", context.of(request).auth.cookie(request, SESSION_COOKIE, "", max_age=0))
    return response
