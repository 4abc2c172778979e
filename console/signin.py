"""Judging who a request is: header credentials and the login form through the brake, cookies against their session."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from console import client
from console.auth import SESSION_COOKIE, Authenticator, Identity, Presented
from console.brake import Brake
from console.sessions import Sessions
from console.settings import IPNetwork
from receiver.kernel import logs

log = logs.get("console.signin")
T = TypeVar("T")


@dataclass(frozen=True)
class Braked:
    """Refused without a look at the credentials: too many recent failures."""

    retry_after: int


def client_of(request: Request) -> str:
    """The address the Guard worked out for this request (see `console.client`)."""
    return str(request.scope.get("state", {}).get("client") or "unknown")


async def attempt(brake: Brake, request: Request, name: str, check: Callable[[], T | None], via: str) -> T | Braked | None:
    """`check()`'s answer unless the brake says wait; a failure counts for the client and for `name`."""
    where = client_of(request)
    standing = await run_in_threadpool(brake.standing, where, name)
    if standing.wait > 0:
        # Debug only: refusals come as fast as an attacker sends them; the failures (warnings) cannot.
        log.debug("sign-in refused: too many failures", via=via, client=where, retry_after=standing.retry_after)
        return Braked(standing.retry_after)
    result = check()
    if result is None:
        await run_in_threadpool(brake.failed, where, name)
        log.warning("sign-in failed", via=via, client=where, failures=standing.failures + 1)
    else:
        await run_in_threadpool(brake.succeeded, where, standing)
    return result


class Doorman:
    def __init__(self, auth: Authenticator, brake: Brake, sessions: Sessions, trusted: Sequence[IPNetwork]) -> None:
        self.auth = auth
        self.brake = brake
        self.sessions = sessions
        self.trusted = tuple(trusted)

    def place(self, request: Request) -> None:
        """Settle, once, where the request comes from and over which scheme, for everything after."""
        request.scope.setdefault("state", {})["client"] = client.address(request.scope, self.trusted)
        request.scope["scheme"] = client.scheme(request.scope, self.trusted)

    async def identify(self, request: Request) -> Identity | Braked | None:
        presented = self.auth.presented(request)
        if presented is None:
            return await self._session(request)
        return await self._header(request, presented)

    async def _header(self, request: Request, presented: Presented) -> Identity | Braked | None:
        try:
            return await attempt(self.brake, request, presented.name, lambda: self.auth.verify(presented), presented.via)
        except RedisError:
            if presented.via != "token":
                raise
            # /metrics must still say "Redis is down" to its scraper; a long random token is not
            # what a brake protects, a person's password is (Basic and the form stay refused).
            log.warning("redis unavailable: bearer token checked without the brake", client=client_of(request))
            return self.auth.verify(presented)

    async def _session(self, request: Request) -> Identity | None:
        identity = self.auth.session(request.cookies.get(SESSION_COOKIE, ""))
        if identity is None or identity.via == "open":
            return identity  # With auth off nothing is secret: there is nothing to sign out of.
        alive = await run_in_threadpool(self.sessions.alive, identity.session, identity.user)
        return identity if alive else None
