"""An operator plays a recording in Chromium, from local storage and from S3-compatible storage."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ACCOUNT_SID, Receiver, drain
from tests.e2e.test_voice_pipeline import callback
from tests.standin.media import WAV_HEADER_SIZE, WAV_SAMPLE_RATE
from tests.support.console.browser import launch, screenshot
from tests.support.console.helpers import PASSWORD, SECRET_KEY, TOKEN, USER
from tests.support.s3_server import Bucket, bucket, s3_server
from workers.commands.settings import Settings

__all__ = ["bucket", "s3_server"]  # fixtures, used by name

SECONDS = 3
# The stand-in's voice media is a real 8 kHz 16-bit mono WAV of this many bytes: three seconds.
WAV_BYTES = WAV_HEADER_SIZE + SECONDS * WAV_SAMPLE_RATE * 2


@pytest.fixture
def browser() -> Iterator[Any]:
    yield from launch()


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "local":
        return {}
    made: Bucket = request.getfixturevalue("bucket")
    return {"storage_url": made.url, "storage_endpoint_url": made.server.endpoint}


def test_operator_plays_a_recording_and_the_player_knows_its_duration(
    browser: Any, storage: dict[str, str], pipeline_settings: Callable[..., Settings],
    start_receiver: Callable[[Settings], Receiver], start_console: Callable[[Settings], str], standin: Any,
) -> None:
    settings = pipeline_settings(admin_username=USER, admin_password=PASSWORD, admin_token=TOKEN,
                                 admin_secret_key=SECRET_KEY, **storage)
    receiver, console = start_receiver(settings), start_console(settings)
    standin.state.media_size = WAV_BYTES
    recording = standin.state.add_voice(account_sid=ACCOUNT_SID, duration=SECONDS)
    assert receiver.post(receiver.url(), callback(recording, "completed")).status_code == 204
    drain(settings)

    page = browser.new_page()
    page.goto(f"{console}/recordings/voice/{recording.sid}")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{console}/recordings/voice/{recording.sid}")
    player = page.locator("#media audio")
    player.evaluate("audio => { audio.muted = true; return audio.play(); }")
    page.wait_for_function(
        "() => { const a = document.querySelector('#media audio'); return a.currentTime > 0 || a.ended; }", timeout=20000,
    )
    assert player.evaluate("audio => audio.error") is None
    assert player.evaluate("audio => audio.duration") == pytest.approx(SECONDS, abs=0.01)
    assert f"{SECONDS} s" in page.locator("#twilio-metadata").inner_text()
    screenshot(page, f"13-recording-plays-{'s3' if storage else 'local'}")
    download = page.locator("#media a:has-text('Download')")
    with page.expect_download() as fetched:
        download.click()
    assert fetched.value.suggested_filename == f"{recording.sid}.wav"
    assert Path(fetched.value.path()).read_bytes()[:4] == b"RIFF" and Path(fetched.value.path()).stat().st_size == WAV_BYTES
