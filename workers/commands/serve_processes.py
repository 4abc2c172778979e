"""Runs the public receiver in one process or in several sharing one listening port."""

from __future__ import annotations

import uvicorn
from starlette.types import ASGIApp

from receiver.app.factory import create_app
from receiver.app.settings import ReceiverSettings
from workers.commands import gc_tuning

# uvicorn's supervisor restarts a worker process that dies and stops them all on SIGINT/SIGTERM.
APP = "workers.commands.serve_processes:served_app"


def served_app() -> ASGIApp:
    """The receiver as `serve` runs it. uvicorn builds it in every serving process (it spawns them
    when there are several, and a freeze does not cross a spawn), so the collector is tuned here,
    after the app and every module it loaded exist, and never by the app factory itself."""
    app = create_app()
    gc_tuning.tune_for_serving()
    return app


def run(settings: ReceiverSettings, host: str, port: int, processes: int = 1) -> None:
    """`processes` > 1: uvicorn binds the port once and starts that many receiver processes on it,
    each with its own app (Redis connections, counters); the spool file is shared, which SQLite
    allows. Each process builds its app from the environment, as `serve` does."""
    uvicorn.run(
        APP, factory=True, host=host, port=port, proxy_headers=False, workers=processes if processes > 1 else None,
        log_level=settings.log_level.lower(), access_log=False, timeout_graceful_shutdown=10, log_config=None,
    )
