"""ASGI middleware that logs every API request and applies latency and injected faults before routing."""

from __future__ import annotations

import asyncio

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import auth_username
from .errors import error_response
from .faults import Fault
from .state import StandinState

CONTROL_PREFIX = "/_standin/"
# "Far longer than any client timeout"; shutdown or client disconnect ends it sooner.
HANG_S = 3600.0


async def _until_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class StandinMiddleware:
    def __init__(self, app: ASGIApp, state: StandinState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        answered: list[int] = []

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered.append(message["status"])
            await send(message)

        try:
            await self._serve(scope, receive, recording_send)
        finally:
            # Logged even when cancelled at shutdown; status None means nothing was answered.
            self.state.log_request(
                scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1"),
                auth_username(Headers(scope=scope).get("authorization")),
                answered[0] if answered else None,
            )

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.state.latency_s > 0:
            await asyncio.sleep(self.state.latency_s)
        fault = self.state.take_fault(scope["method"], scope["path"])
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.hang and not await self._hang(receive):
            return
        if fault.delay_s > 0:
            await asyncio.sleep(fault.delay_s)
        if fault.status == 0:
            await self.app(scope, receive, send)
            return
        await self._fault_response(fault, scope, receive, send)

    async def _hang(self, receive: Receive) -> bool:
        """False if the client went away first; True once HANG_S passed or release_hangs() ran."""
        released = self.state.hang_started()
        disconnect = asyncio.ensure_future(_until_disconnect(receive))
        release = asyncio.ensure_future(released.wait())
        try:
            await asyncio.wait({disconnect, release}, timeout=HANG_S,
                               return_when=asyncio.FIRST_COMPLETED)
            client_gone = disconnect.done()
        finally:
            disconnect.cancel()
            release.cancel()
            self.state.hang_finished(released)
        return not client_gone

    async def _fault_response(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        if fault.location:
            headers["Location"] = fault.location
        response = error_response(scope["path"], fault.status, headers=headers)
        await response(scope, receive, send)
