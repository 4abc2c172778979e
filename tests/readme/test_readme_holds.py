"""The README's "Deleting recordings at Twilio" commands: hold, release, holds, and the deletions dry run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis import Redis

from receiver.kernel import holds
from tests.conftest import ACCOUNT_SID, Receiver, drain
from tests.e2e.test_voice_pipeline import callback
from tests.readme.test_readme_cli import run
from tests.readme.test_readme_cli_mistakes import assert_one_line, closed_redis
from workers.commands.settings import Settings

CALL = "CA" + "0123456789abcdef" * 2
RECORDING = "RE" + "fedcba9876543210" * 2


def test_hold_holds_and_release_keep_who_why_and_when(redis_url: str, redis: Redis) -> None:
    placed = run("hold", CALL, "--reason", "litigation 2026-114", "--by", "counsel", REDIS_URL=redis_url)
    assert placed.returncode == 0, placed.stderr
    assert f"{CALL}  held by counsel since " in placed.stdout and "litigation 2026-114" in placed.stdout
    assert run("hold", RECORDING, "--reason", "audit", REDIS_URL=redis_url).returncode == 0
    [hold] = [h for h in holds.every(redis) if h.sid == CALL]
    assert (hold.by, hold.reason) == ("counsel", "litigation 2026-114") and hold.at > 0

    listed = run("holds", REDIS_URL=redis_url)
    assert listed.returncode == 0 and CALL in listed.stdout and RECORDING in listed.stdout
    assert listed.stdout.strip().splitlines()[-1] == "2 holds"

    released = run("release", CALL, REDIS_URL=redis_url)
    assert released.returncode == 0 and f"released   {CALL}" in released.stdout
    assert [h.sid for h in holds.every(redis)] == [RECORDING]


def test_hold_mistakes_are_one_line_and_exit_2(redis_url: str, tmp_path: Path) -> None:
    assert_one_line(run("hold", "AC" + "0" * 32, "--reason", "x", REDIS_URL=redis_url), "hold",
                    "is not a recording, call, conference or room SID")
    assert_one_line(run("hold", CALL, "--reason", "  ", REDIS_URL=redis_url), "hold", "--reason must say why")
    assert_one_line(run("hold", CALL, REDIS_URL=redis_url), "hold", "--reason")
    assert_one_line(run("release", CALL, REDIS_URL=redis_url), "release", "is not held")
    assert_one_line(run("holds", DATA_DIR=str(tmp_path)), "holds", "REDIS_URL", "is not set")
    assert_one_line(run("deletions", REDIS_URL=closed_redis()), "deletions", "cannot reach Redis")
    assert_one_line(run("deletions", REDIS_URL=redis_url, DELETE_DELAY="soon"), "deletions",
                    "DELETE_DELAY", "0 or a number with a unit")


def test_deletions_lists_what_would_be_deleted_when_and_which_are_held(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis,
) -> None:
    settings = pipeline_settings(delete_at_twilio="after-archive", delete_delay="7d")
    receiver = start_receiver(settings)
    free, held = standin.state.add_voice(account_sid=ACCOUNT_SID), standin.state.add_voice(account_sid=ACCOUNT_SID)
    assert run("hold", held.call_sid, "--reason", "case 7", REDIS_URL=settings.redis_url or "").returncode == 0
    for rec in (free, held):
        assert receiver.post(receiver.url(), callback(rec)).status_code == 204
    drain(settings)

    shown = run("deletions", REDIS_URL=settings.redis_url or "", DELETE_AT_TWILIO="after-archive", DELETE_DELAY="7d")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.strip().splitlines()
    assert lines[0] == "policy     DELETE_AT_TWILIO=after-archive, DELETE_DELAY=7d"
    [free_line] = [line for line in lines if free.sid in line]
    [held_line] = [line for line in lines if held.sid in line]
    assert "HELD" not in free_line and "HELD by " in held_line and f"on {held.call_sid}: case 7" in held_line
    assert lines[-1] == "2 scheduled, 1 of them held"
    # A dry run: nothing was deleted, nothing left the schedule.
    assert standin.state.requests("DELETE") == []
    assert run("deletions", REDIS_URL=settings.redis_url or "").stdout.strip().splitlines()[-1] == "2 scheduled, 1 of them held"
