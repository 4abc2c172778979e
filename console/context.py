"""What every console endpoint shares, built once by the app factory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import CollectorRegistry
from redis import Redis
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from console.actions import Actions
from console.archive import Archive
from console.auth import Authenticator
from console.brake import Brake
from console.failures import FailureIndex
from console.queries import Recordings
from console.render import Renderer
from console.sessions import Sessions
from console.settings import ConsoleSettings

T = TypeVar("T")


@dataclass
class Console:
    settings: ConsoleSettings
    redis: Redis  # synchronous: RQ's API is, and its calls run in the thread pool
    auth: Authenticator
    renderer: Renderer
    recordings: Recordings
    failures: FailureIndex
    actions: Actions
    metrics: CollectorRegistry
    brake: Brake
    sessions: Sessions
    archive: Archive

    @property
    def queue_name(self) -> str:
        return self.settings.queue_name

    async def run(self, func: Callable[..., T], *args: object) -> T:
        """Redis and RQ calls block; keep them off the event loop."""
        return await run_in_threadpool(func, *args)


def of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console
