"""The comparison receivers for the benchmark: bare no-op endpoints and the tutorial receiver.

Each factory ends with the collector settings `recording-receiver serve` applies to the receiver
(workers.commands.gc_tuning), so every case runs in a process set up the same way.
"""

from __future__ import annotations

import os

from redis import Redis
from rq import Queue
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from twilio.request_validator import RequestValidator

from workers.commands import gc_tuning


async def _noop(request: Request) -> Response:
    await request.body()
    return Response(status_code=204)


def bare_app() -> Starlette:
    """The ceiling: Starlette reading the body and answering 204, nothing else."""
    app = Starlette(routes=[Route("/twilio/recordings/voice", _noop, methods=["POST"])])
    gc_tuning.tune_for_serving()
    return app


async def _asgi_noop(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":  # the lifespan: nothing to start
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def asgi_app() -> ASGIApp:
    """A higher ceiling: a raw ASGI callable reading the body and answering 204 on any path, as
    the receiver's callback routes skip Starlette (receiver.app.factory.FastPath)."""
    gc_tuning.tune_for_serving()
    return _asgi_noop


def tutorial_app() -> Starlette:
    """The receiver as most tutorials write it: parse the form, validate, `Queue.enqueue` inline."""
    validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
    queue = Queue("recordings", connection=Redis.from_url(os.environ["REDIS_URL"]))
    public = os.environ["PUBLIC_BASE_URL"]

    async def voice(request: Request) -> Response:
        form = await request.form()
        params = {key: str(value) for key, value in form.items()}
        url = public + request.url.path
        if not validator.validate(url, params, request.headers.get("X-Twilio-Signature", "")):
            return Response(status_code=403)
        queue.enqueue("workers.jobs.process_recording", params)
        return Response(status_code=204)

    app = Starlette(routes=[Route("/twilio/recordings/voice", voice, methods=["POST"])])
    gc_tuning.tune_for_serving()
    return app
