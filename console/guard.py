"""Default-deny: every request needs an identity unless its path is public; safe headers on all."""

from __future__ import annotations

from urllib.parse import quote

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


def is_machine_path(path: str) -> bool:
    return path.startswith(MACHINE_PREFIXES)


class Guard:
    def __init__(self, app: ASGIApp, auth: Authenticator) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
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
        identity = self.auth.identify(request)
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
