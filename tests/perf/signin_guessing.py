"""How many wrong HTTP Basic passwords a console checks in 10 s: `python -m tests.perf.signin_guessing`."""

from __future__ import annotations

import base64
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from console.app import create_app
from console.server import UVICORN_OPTIONS
from tests.support.servers import RedisProcess, serve_app
from workers.commands.settings import Settings

SECONDS = 10.0


def hammer(base: str) -> Counter[int]:
    """One client, one request at a time, wrong password every time; statuses counted."""
    wrong = {"authorization": "Basic " + base64.b64encode(b"operator:wrong").decode()}
    seen: Counter[int] = Counter()
    with httpx.Client(base_url=base, timeout=30) as client:
        start = time.monotonic()
        while time.monotonic() - start < SECONDS:
            seen[client.get("/api/overview", headers=wrong).status_code] += 1
    return seen


def main() -> None:
    data = Path(tempfile.mkdtemp())
    redis = RedisProcess(data)
    try:
        settings = Settings(
            redis_url=redis.url, admin_username="operator", admin_password="right", admin_secret_key="k",
            data_dir=data / "data", log_format="json", log_level="ERROR",
        )
        with serve_app(create_app(settings), **UVICORN_OPTIONS) as base:
            seen = hammer(base)
        print(f"in {SECONDS:.0f} s: {seen[401]} wrong passwords checked (401), {seen[429]} refused unchecked (429)")
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
