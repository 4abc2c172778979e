"""Headless Chromium through Playwright, or a skip that says how to install it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
INSTALL_HINT = (
    "headless Chromium is needed for the console's browser tests: `apt-get install chromium` "
    "(Debian's package) and `pip install playwright` (no `playwright install` needed)"
)


def launch() -> Iterator[Any]:
    """A Chromium browser for one test; skips with the install hint when it is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip(INSTALL_HINT)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(INSTALL_HINT)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Any, name: str) -> None:
    """Full-page PNGs for a person to look at, only when CONSOLE_SCREENSHOTS names a directory."""
    directory = os.environ.get("CONSOLE_SCREENSHOTS")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(directory) / f"{name}.png"), full_page=True)
