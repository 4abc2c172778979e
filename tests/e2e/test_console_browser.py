"""An operator in a real browser: signs in, finds a failed recording by CallSid, reads why, replays it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import ACCOUNT_SID, Receiver, drain
from tests.e2e.test_voice_pipeline import callback
from tests.support.console.browser import launch, screenshot
from tests.support.console.helpers import PASSWORD, SECRET_KEY, TOKEN, USER
from tests.support.paths import REPO_ROOT
from tests.support.servers import wait_for
from workers.commands.settings import Settings

ROOT = REPO_ROOT


@pytest.fixture
def browser() -> Iterator[Any]:
    yield from launch()


@pytest.fixture
def console_pipeline(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver],
    start_console: Callable[[Settings], str], standin: Any,
) -> tuple[Settings, Receiver, str]:
    settings = pipeline_settings(admin_username=USER, admin_password=PASSWORD, admin_token=TOKEN, admin_secret_key=SECRET_KEY)
    return settings, start_receiver(settings), start_console(settings)


def test_operator_finds_why_a_recording_failed_and_replays_it(
    browser: Any, console_pipeline: tuple[Settings, Receiver, str], standin: Any,
) -> None:
    settings, receiver, console = console_pipeline
    fine = standin.state.add_voice(account_sid=ACCOUNT_SID, duration=12)
    broken = standin.state.add_voice(account_sid=ACCOUNT_SID, duration=31)
    silent = standin.state.add_voice(account_sid=ACCOUNT_SID, status="absent")
    # Twilio refuses the metadata once with 403: a permanent failure, so the job stops at once.
    standin.state.add_fault("GET", f"{broken.sid}.json", 403, times=1)
    for recording, status, extra in ((fine, "completed", {}), (broken, "completed", {}), (silent, "absent", {"ErrorCode": "16102"})):
        assert receiver.post(receiver.url(), callback(recording, "in-progress")).status_code == 204
        assert receiver.post(receiver.url(), callback(recording, status, **extra)).status_code == 204
    receiver.post(receiver.url(), callback(fine, "completed"))  # a duplicate, for the timeline
    drain(settings)

    page = browser.new_page(viewport={"width": 1360, "height": 900})
    page.goto(console)
    assert "/login" in page.url
    screenshot(page, "01-login")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", "wrong password")
    page.click("button:has-text('Sign in')")
    assert page.locator(".error").inner_text() == "Wrong username or password."
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(console + "/")
    assert page.locator(".card:has-text('Jobs failed, last hour') .value").inner_text() == "1"
    screenshot(page, "02-overview")

    # Find it by the call it belongs to, as the person who reported it would know it.
    page.click("nav >> text=Recordings")
    screenshot(page, "03-recordings")
    page.fill("input[name=q]", broken.call_sid)
    page.click("button:has-text('Search')")
    row = page.locator("table.list tbody tr")
    assert row.count() == 1 and "job failed" in row.inner_text()
    screenshot(page, "04-search-by-callsid")
    page.click(f"a:has-text('{broken.sid}')")
    page.wait_for_url(re.compile(f"/recordings/voice/{broken.sid}$"))
    alert = page.locator(".alert.bad")
    assert "Twilio answered 403" in alert.inner_text()
    timeline = page.locator("table.timeline").inner_text()
    assert "callback received" in timeline and "job attempt" in timeline and "Twilio answered 403" in timeline
    screenshot(page, "05-recording-failed")

    page.click("text=Replay this job…")
    assert page.locator("h1").inner_text().startswith(f"Replay job rr-voice-{broken.sid}-completed")
    screenshot(page, "06-confirm-replay")
    page.click("button:has-text('Replay 1 job')")
    page.wait_for_url(re.compile(f"/recordings/voice/{broken.sid}\\?notice=replayed"))
    assert "Replayed 1 job" in page.locator(".notice").inner_text()
    assert "replayed by operator" in page.locator("table.timeline").inner_text()

    drain(settings)
    page.reload()
    assert page.locator(".alert.bad").count() == 0
    assert page.locator(".summary").inner_text().startswith("completed")
    assert f"{broken.sid}.wav" in page.locator("#media").inner_text()
    assert (settings.storage_path / "voice" / ACCOUNT_SID / f"{broken.sid}.wav").exists()
    screenshot(page, "07-recording-archived")

    page.click("nav >> text=Failures")
    assert "No failed jobs" in page.content() and "replay" in page.locator("text=Recent console actions").locator("..").inner_text()
    screenshot(page, "08-failures-after")
    # A worker process with two threads appears on the workers page.
    env = dict(os.environ, REDIS_URL=settings.redis_url or "", TWILIO_ACCOUNT_SID=ACCOUNT_SID, WORKER_THREADS="2")
    worker = subprocess.Popen([sys.executable, "-m", "workers.commands.cli", "worker", "--no-scheduler"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        page.click("nav >> text=Workers")

        def both_threads_listed() -> bool:
            if "2 alive in 1 process" in page.content():
                return True
            page.reload()
            return False

        wait_for(both_threads_listed, timeout=20, interval=0.2, what="the worker's two threads on the workers page")
        assert "2 alive in 1 process" in page.locator("h2:has-text('Workers')").inner_text()
        screenshot(page, "09-workers")
        page.click("nav >> text=Overview")
        screenshot(page, "12-overview-after")
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_browser_without_a_session_is_sent_to_login_and_actions_need_the_csrf_token(
    browser: Any, console_pipeline: tuple[Settings, Receiver, str], standin: Any,
) -> None:
    settings, receiver, console = console_pipeline
    broken = standin.state.add_voice(account_sid=ACCOUNT_SID)
    standin.state.add_fault("GET", f"{broken.sid}.json", 401, times=1)
    receiver.post(receiver.url(), callback(broken))
    drain(settings)
    job_id = f"rr-voice-{broken.sid}-completed"

    anonymous = browser.new_context()
    page = anonymous.new_page()
    for path in ["/", "/recordings", f"/recordings/voice/{broken.sid}", "/failures", "/workers", f"/jobs/{job_id}/replay"]:
        page.goto(console + path)
        assert re.search(r"/login\?next=", page.url), path
    for path in ["/api/overview", "/api/recordings", "/metrics"]:
        assert anonymous.request.get(console + path).status == 401
    assert anonymous.request.post(console + f"/jobs/{job_id}/replay", form={"next": "/"}, max_redirects=0).status == 303

    signed_in = browser.new_context()
    page = signed_in.new_page()
    page.goto(console + "/login")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(console + "/")
    page.goto(console + "/failures")
    assert "Twilio answered 401" in page.content()
    screenshot(page, "10-failures")
    page.click("text=Twilio answered 401")
    screenshot(page, "11-cause")
    # The session cookie alone is not enough to act: without the form's token, 403.
    for path in [f"/jobs/{job_id}/replay", f"/jobs/{job_id}/discard", "/logout"]:
        assert signed_in.request.post(console + path, form={"next": "/"}, max_redirects=0).status == 403, path
        assert signed_in.request.post(console + path, form={"csrf_token": "forged", "next": "/"}, max_redirects=0).status == 403
    assert page.locator("text=Twilio answered 401").count() >= 1  # nothing was replayed
    page.goto(console + "/failures")
    assert "Twilio answered 401" in page.content()
