"""Runs the public receiver in one process or in several sharing one listening port."""

from __future__ import annotations

import uvicorn

from receiver.settings import Settings

# uvicorn's supervisor restarts a worker process that dies and stops them all on SIGINT/SIGTERM.
APP = "receiver.app:create_app"


def run(settings: Settings, host: str, port: int, processes: int = 1) -> None:
    """`processes` > 1: uvicorn binds the port once and starts that many receiver processes on it,
    each with its own app (Redis connections, counters); the spool file is shared, which SQLite
    allows. Each process builds its app from the environment, as `serve` does."""
    uvicorn.run(
        APP, factory=True, host=host, port=port, proxy_headers=False, workers=processes if processes > 1 else None,
        log_level=settings.log_level.lower(), access_log=False, timeout_graceful_shutdown=10, log_config=None,
    )
