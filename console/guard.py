"""Default-deny: every request needs an identity unless its path is public; safe headers on all."""

from __future__ import annotations

from urllib.parse import quote

from redis.exceptions import RedisError
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console.auth import OPEN_USER, SESSION_COOKIE, Authenticator
from console.signin import Braked, Doorman
from receiver.kernel import logs

log = logs.get("console.guard")

PUBLIC_PATHS = frozenset({"/login", "/healthz", "/favicon.ico", "/static/console.css"})
MACHINE_PREFIXES = ("/api/", "/metrics")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
SECURITY_HEADERS = {
    # No script runs on these pages at all; styles come only from our own stylesheet.
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    # Recording and call SIDs are in our URLs: never sent to another site.
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def with_media(origin: str) -> str:
    """The policy for a page that plays media from `origin` ('self', or it and the object store)."""
    return SECURITY_HEADERS["content-security-policy"] + f"; media-src {origin}"


def is_machine_path(path: str) -> bool:
    return path.startswith(MACHINE_PREFIXES)


class Guard:
    def __init__(self, app: ASGIApp, auth: Authenticator, doorman: Doorman) -> None:
        self.app = app
        self.auth = auth
        self.doorman = doorman

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        self.doorman.place(request)
        new_cookie = ""

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                if new_cookie:
                    headers.append("set-cookie", new_cookie)
            await send(message)

        if self.auth.open and _host(request) not in LOOPBACK_HOSTS:
            # Without auth, only a loopback name may reach us: a DNS-rebinding page cannot.
            await PlainTextResponse("host not allowed\n", status_code=400)(scope, receive, send_with_headers)
            return
        try:
            identity = await self.doorman.identify(request)
        except RedisError as exc:
            # Sessions and the brake live in Redis: without it nobody can be told apart.
            log.warning("redis unavailable", error=type(exc).__name__, path=request.url.path)
            await _unavailable(request)(scope, receive, send_with_headers)
            return
        if isinstance(identity, Braked):
            await _braked(request, identity)(scope, receive, send_with_headers)
            return
        if identity is None and self.auth.open:
            value, identity = self.auth.issue(OPEN_USER)
            new_cookie = self.auth.cookie(request, SESSION_COOKIE, value)
        scope.setdefault("state", {})["identity"] = identity
        if identity is None and scope["path"] not in PUBLIC_PATHS:
            await _refuse(request)(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def _host(request: Request) -> str:
    host = request.headers.get("host", "")
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if ":" in host else host


def _refuse(request: Request) -> Response:
    if is_machine_path(request.url.path):
        return JSONResponse(
            {"error": "authentication required"}, status_code=401,
            headers={"www-authenticate": 'Bearer realm="recording-receiver console"'},
        )
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def _braked(request: Request, braked: Braked) -> Response:
    headers = {"retry-after": str(braked.retry_after)}
    message = f"too many failed sign-in attempts from here or for this user; retry in {braked.retry_after} s"
    if is_machine_path(request.url.path):
        return JSONResponse({"error": message, "retry_after": braked.retry_after}, status_code=429, headers=headers)
    return PlainTextResponse(message + "\n", status_code=429, headers=headers)


def _unavailable(request: Request) -> Response:
    message = "Redis is unreachable: sign-in cannot be checked right now"
    if is_machine_path(request.url.path):
        return JSONResponse({"error": message}, status_code=503)
    return PlainTextResponse(message + "\n", status_code=503)
