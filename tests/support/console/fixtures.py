"""Console fixtures: settings with credentials, the console under uvicorn, a signed-in client."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import Receiver
from tests.support.console import helpers
from tests.support.console.helpers import PASSWORD, SECRET_KEY, TOKEN, USER
from tests.support.console.traffic import scrape_after_traffic
from tests.support.servers import serve_app
from workers.commands.settings import Settings


@pytest.fixture(autouse=True)
def _close_signed_in_clients() -> Iterator[None]:
    yield
    while helpers.signed_in:
        helpers.signed_in.pop().close()


@pytest.fixture
def console_settings(make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "admin_username": USER, "admin_password": PASSWORD, "admin_token": TOKEN, "admin_secret_key": SECRET_KEY,
        }
        values.update(overrides)
        return make_settings(**values)

    return make


@pytest.fixture
def start_console() -> Iterator[Callable[..., str]]:
    """Serve the console app as `recording-receiver admin` does, on a free loopback port; returns its base URL."""
    stack = contextlib.ExitStack()

    def start(settings: Settings, **app_options: Any) -> str:
        from console.app import create_app
        from console.server import UVICORN_OPTIONS

        return stack.enter_context(serve_app(create_app(settings, **app_options), **UVICORN_OPTIONS))

    with stack:
        yield start


@pytest.fixture
def scraped(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    start_console: Callable[[Settings], str], standin: Any,
) -> str:
    """/metrics after real traffic of two sources (tests/support/console/traffic.py)."""
    settings = pipeline_settings(admin_username=USER, admin_password=PASSWORD, admin_token=TOKEN, admin_secret_key=SECRET_KEY)
    return scrape_after_traffic(settings, start_receiver(settings), start_console(settings), standin)
