"""A webhook endpoint on loopback that keeps every request it gets and answers as a test tells it."""

from __future__ import annotations

import base64
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.servers import listening_socket, serve_app


def new_secret(seed: int) -> str:
    return "whsec_" + base64.b64encode(bytes([seed]) * 32).decode()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Sink:
    """Every request, and per path the answers to give next (status, headers), then `otherwise`."""

    base_url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    otherwise: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        return self.base_url + path

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.received.append(Received(request.url.path, dict(request.headers), body))
            queued = self.answers.get(request.url.path)
            status, headers = queued.pop(0) if queued else (self.otherwise.get(request.url.path, 204), {})
        return Response(b"sink says no" if status >= 300 else b"", status_code=status, headers=headers)


@contextlib.contextmanager
def running_sink() -> Iterator[Sink]:
    sink = Sink()
    app = Starlette(routes=[Route("/{path:path}", sink.handle, methods=["POST"])])
    sock = listening_socket()
    sink.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with serve_app(app, sock=sock):
        yield sink
