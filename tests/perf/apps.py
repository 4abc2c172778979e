"""The comparison receivers for the benchmark: a bare no-op endpoint and the tutorial receiver."""

from __future__ import annotations

import os

from redis import Redis
from rq import Queue
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator


async def _noop(request: Request) -> Response:
    await request.body()
    return Response(status_code=204)


def bare_app() -> Starlette:
    """The ceiling: Starlette reading the body and answering 204, nothing else."""
    return Starlette(routes=[Route("/twilio/recordings/voice", _noop, methods=["POST"])])


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

    return Starlette(routes=[Route("/twilio/recordings/voice", voice, methods=["POST"])])
