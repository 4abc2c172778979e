"""The reconciler against the Twilio stand-in: four sources, several pages each, some callbacks lost."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from receiver.kernel import keys
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, Receiver, drain
from tests.e2e.test_sources_pipeline import legacy_callback, media_callback, video_callback
from tests.e2e.test_voice_pipeline import callback as voice_callback
from tests.support.paths import REPO_ROOT
from workers.commands.settings import Settings
from workers.jobs.catalog import Catalog
from workers.reconcile import reconciler
from workers.reconcile.report import Report, Row

ROOT = REPO_ROOT
PAGE_SIZE = 2  # seven recordings per source: four pages each
CALLBACKS = {"voice": voice_callback, "video": video_callback, "media": media_callback, "legacy": legacy_callback}
LIST_PATHS = {
    "voice": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings.json", "video": "/v1/Recordings",
    "media": "/v1/MediaRecordings", "legacy": f"/2008-08-01/Accounts/{ACCOUNT_SID}/Recordings",
}


@dataclass
class World:
    """What the stand-in holds, and which recordings the reconciler should (and should not) queue."""

    expected: dict[str, set[str]] = field(default_factory=dict)  # source -> job ids it must queue
    called_back: dict[str, list[Any]] = field(default_factory=dict)
    missing: dict[str, list[Any]] = field(default_factory=dict)


def _final(source: str, rec: Any) -> str:
    status = getattr(rec, "status", "completed")
    return "absent" if status == "absent" else status


def build_world(standin: Any, receiver: Receiver) -> World:
    """Per source: five final recordings (two with callbacks), one that is final another way, one in flight."""
    add = standin.state.add
    extra = {
        "voice": [add("voice", account_sid=ACCOUNT_SID, status="absent", error_code=16101),
                  add("voice", account_sid=ACCOUNT_SID, status="in-progress")],
        "video": [add("video", account_sid=ACCOUNT_SID, status="failed"), add("video", account_sid=ACCOUNT_SID, status="processing")],
        "media": [add("media", account_sid=ACCOUNT_SID, status="deleted"), add("media", account_sid=ACCOUNT_SID, status="processing")],
        "legacy": [add("legacy", account_sid=ACCOUNT_SID), add("legacy", account_sid=ACCOUNT_SID)],
    }
    world = World()
    for source, others in extra.items():
        done = [add(source, account_sid=ACCOUNT_SID) for _ in range(5)]
        world.called_back[source] = done[:2]
        for rec in done[:2]:
            assert receiver.post(receiver.url(source), CALLBACKS[source](rec)).status_code == 204
        finals = [r for r in [*done[2:], *others] if _final(source, r) in ("completed", "absent", "failed")]
        world.missing[source] = finals
        world.expected[source] = {f"rr-{source}-{r.sid}-{_final(source, r)}" for r in finals}
    return world


def job_ids(redis: Redis) -> set[str]:
    return set(Queue("recordings", connection=redis, serializer=JSONSerializer).job_ids)


def row(report: Report, source: str) -> Row:
    [found] = [r for r in report.rows if r.source == source]
    return found


@pytest.fixture
def settings(pipeline_settings: Callable[..., Settings]) -> Settings:
    return pipeline_settings(reconcile_page_size=PAGE_SIZE)


def test_a_pass_queues_exactly_the_recordings_without_callbacks_and_a_second_queues_nothing(
    settings: Settings, start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    receiver = start_receiver(settings)
    world = build_world(standin, receiver)
    before = job_ids(redis)

    report = reconciler.run_once(settings)
    assert report.ok, report.render()
    assert job_ids(redis) - before == set().union(*world.expected.values())
    for source in CALLBACKS:
        r = row(report, source)
        assert (r.seen, r.missing, r.queued, r.duplicates) == (7, len(world.expected[source]), len(world.expected[source]), 0), source
        assert len(standin.state.requests("GET", LIST_PATHS[source])) == 4, f"{source} did not page"
    assert (row(report, "voice").pending, row(report, "video").pending, row(report, "media").pending) == (1, 1, 1)
    assert row(report, "media").deleted == 1

    again = reconciler.run_once(settings)
    assert again.ok and again.total("queued") == 0 and again.total("missing") == 0 and again.total("seen") == 28
    assert job_ids(redis) - before == set().union(*world.expected.values())


def test_reconciled_recordings_are_processed_like_callbacks(
    settings: Settings, start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    receiver = start_receiver(settings)
    world = build_world(standin, receiver)
    reconciler.run_once(settings)
    drain(settings)
    catalog = Catalog(redis)
    for source, recordings in world.missing.items():
        for rec in recordings:
            state = catalog.get(source, rec.sid)
            assert state["status"] == _final(source, rec), (source, rec.sid)
            if state["status"] == "completed":
                assert state["archived_at"] and Path(state["metadata_path"]).exists()
            timeline = [json.loads(e) for e in redis.lrange(keys.timeline_key(source, rec.sid), 0, -1)]
            assert timeline[0]["kind"] == "reconciler" and timeline[0]["verdict"] == "queued"
    absent = world.missing["voice"][-1]
    assert catalog.get("voice", absent.sid)["error_code"] == "16101"


def test_a_reconcile_pass_over_legacy_recordings_archives_each_wav_and_its_xml_metadata(
    settings: Settings, standin: Any, redis: Redis
) -> None:
    # Five recordings, three pages; the stand-in's bare 2008 URL answers audio, as Twilio's does.
    recordings = {rec.sid: rec for rec in (standin.state.add_legacy(account_sid=ACCOUNT_SID) for _ in range(5))}
    report = reconciler.run_once(settings, sources=["legacy"])
    assert report.ok, report.render()
    assert {sid for sid, _, _ in row(report, "legacy").found} == set(recordings)
    drain(settings)
    for sid, rec in recordings.items():
        folder = settings.storage_path / "legacy" / ACCOUNT_SID
        assert (folder / f"{sid}.wav").read_bytes() == standin.state.media_bytes(rec, "wav"), sid
        metadata = json.loads((folder / f"{sid}.json").read_text())
        assert metadata["recording"]["sid"] == sid and metadata["recording"]["call_sid"] == rec.call_sid
        assert metadata["recording"]["duration"] == rec.duration
        body = standin.state.media_bytes(rec, "wav")
        assert metadata["media"] == {"file": f"{sid}.wav", "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest(), "format": "wav"}
        assert Catalog(redis).get("legacy", sid)["archived_at"]
    fetched = standin.state.requests("GET", f"/2008-08-01/Accounts/{ACCOUNT_SID}/Recordings/")
    assert sorted(f["path"].rsplit("/", 1)[1] for f in fetched) == sorted(f"{sid}.{ext}" for sid in recordings for ext in ("wav", "xml"))
    assert {f["status"] for f in fetched} == {200}
    some = next(iter(recordings.values()))
    bare = httpx.get(f"{standin.base_url}/2008-08-01/Accounts/{ACCOUNT_SID}/Recordings/{some.sid}", timeout=10)
    assert (bare.headers["content-type"], bare.content) == ("audio/x-wav", standin.state.media_bytes(some, "wav"))


def test_a_callback_after_the_reconciler_acted_changes_nothing(
    settings: Settings, start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    receiver = start_receiver(settings)
    world = build_world(standin, receiver)
    reconciler.run_once(settings)
    drain(settings)
    queued = job_ids(redis)
    late = {source: recs[0] for source, recs in world.missing.items()}
    states = {source: Catalog(redis).get(source, rec.sid) for source, rec in late.items()}
    for source, rec in late.items():
        assert receiver.post(receiver.url(source), CALLBACKS[source](rec)).status_code == 204
    assert job_ids(redis) == queued == set()
    for source, rec in late.items():
        assert Catalog(redis).get(source, rec.sid) == states[source]
        last = json.loads(redis.lrange(keys.timeline_key(source, rec.sid), -1, -1)[0])
        assert (last["kind"], last["verdict"]) == ("callback", "duplicate")


def test_watermark_advances_with_an_overlap_and_the_next_pass_starts_there(
    settings: Settings, start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    receiver = start_receiver(settings)
    build_world(standin, receiver)
    first = reconciler.run_once(settings, sources=["legacy"])
    newest = max(r.date_created for r in standin.state.newest_first("legacy"))
    expected = (newest - timedelta(seconds=settings.reconcile_overlap_seconds)).replace(microsecond=0)
    assert row(first, "legacy").watermark == expected
    assert redis.get(keys.watermark_key(ACCOUNT_SID, "legacy")) == expected.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    second = reconciler.run_once(settings, sources=["legacy"])
    assert row(second, "legacy").since == expected
    # The 2008 list filters by day; the reconciler itself leaves out what is older than its window.
    assert f"DateCreated%3E={expected.date().isoformat()}" in standin.state.requests("GET", LIST_PATHS["legacy"])[-1]["query"]


def test_a_recording_still_in_flight_holds_the_watermark_back_until_it_is_final(
    pipeline_settings: Callable[..., Settings], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings(reconcile_overlap_seconds=0)
    now = datetime.now(UTC)
    slow = standin.state.add_video(account_sid=ACCOUNT_SID, status="processing", date_created=now - timedelta(minutes=30))
    standin.state.add_video(account_sid=ACCOUNT_SID, date_created=now)
    first = reconciler.run_once(settings, sources=["video"])
    assert (row(first, "video").queued, row(first, "video").pending) == (1, 1)
    assert row(first, "video").watermark == slow.date_created.replace(microsecond=0)
    with standin.state.lock:
        slow.status = "completed"
    second = reconciler.run_once(settings, sources=["video"])
    assert [sid for sid, _, _ in row(second, "video").found] == [slow.sid]


def test_a_since_later_than_the_watermark_does_not_move_it(settings: Settings, standin: Any, redis: Redis) -> None:
    now = datetime.now(UTC)
    for minutes in (90, 60, 5):
        standin.state.add_voice(account_sid=ACCOUNT_SID, date_created=now - timedelta(minutes=minutes))
    partial = reconciler.run_once(settings, sources=["voice"], since=(now - timedelta(minutes=30)).isoformat())
    assert row(partial, "voice").seen == 1 and redis.get(keys.watermark_key(ACCOUNT_SID, "voice")) is None
    full = reconciler.run_once(settings, sources=["voice"])
    assert (row(full, "voice").seen, row(full, "voice").queued) == (3, 2)


def test_absolute_next_page_links_on_twilios_own_host_stay_on_the_configured_one(
    settings: Settings, standin: Any, redis: Redis
) -> None:
    # The stand-in now writes https://video.twilio.com/... into meta.next_page_url, as Twilio does.
    standin.state.public_base_url = "https://video.twilio.com"
    for _ in range(5):
        standin.state.add_video(account_sid=ACCOUNT_SID)
        standin.state.add_media(account_sid=ACCOUNT_SID)
    report = reconciler.run_once(settings, sources=["video", "media"])
    assert report.ok, report.render()
    assert (row(report, "video").queued, row(report, "media").queued) == (5, 5)
    assert len(standin.state.requests("GET", "/v1/Recordings")) == 3
    assert len(standin.state.requests("GET", "/v1/MediaRecordings")) == 3


def test_429_while_listing_is_backed_off_honouring_retry_after_and_the_pass_completes(
    settings: Settings, standin: Any, redis: Redis
) -> None:
    for _ in range(5):
        standin.state.add_voice(account_sid=ACCOUNT_SID)
    standin.state.add_fault("GET", r"/Recordings\.json$", 429, times=2, retry_after="1")
    started = time.monotonic()
    report = reconciler.run_once(settings, sources=["voice"])
    assert report.ok, report.render()
    assert time.monotonic() - started >= 2.0
    assert (row(report, "voice").queued, row(report, "voice").backoffs) == (5, 2)
    statuses = [r["status"] for r in standin.state.requests("GET", LIST_PATHS["voice"])]
    assert statuses[:2] == [429, 429] and set(statuses[2:]) == {200}


def test_a_listing_that_keeps_failing_is_reported_and_keeps_its_watermark(
    settings: Settings, standin: Any, redis: Redis
) -> None:
    standin.state.add_voice(account_sid=ACCOUNT_SID)
    standin.state.add_legacy(account_sid=ACCOUNT_SID)
    standin.state.add_fault("GET", r"/Recordings\.json$", 403, times=-1)
    before = time.time()
    report = reconciler.run_once(settings, sources=["voice", "legacy"])
    after = time.time()
    assert not report.ok
    assert row(report, "voice").error and row(report, "voice").error.startswith("permanent: Twilio answered 403")
    assert redis.get(keys.watermark_key(ACCOUNT_SID, "voice")) is None
    assert row(report, "legacy").queued == 1 and row(report, "legacy").error is None
    last = redis.hgetall(keys.RECONCILE_LAST)
    assert last[b"errors"] == b"1" and last[b"queued"] == b"1"
    assert before - 0.001 <= float(last[b"at"]) <= after + 0.001  # when the pass ended, to the ms
    per_source = json.loads(last[b"sources"])
    assert per_source["legacy"]["queued"] == 1 and per_source["legacy"]["errors"] == []
    assert per_source["voice"]["errors"][0].startswith(f"{ACCOUNT_SID}: permanent: Twilio answered 403")


def test_accounts_are_reconciled_one_by_one_and_can_be_chosen(
    pipeline_settings: Callable[..., Settings], standin: Any, redis: Redis, tmp_path: Path
) -> None:
    other = "AC" + "7" * 32
    standin.state.add_account(sid=other, auth_token="other-token")
    accounts_file = tmp_path / "accounts.json"
    accounts_file.write_text(json.dumps({other: {"auth_token": "other-token"}}))
    settings = pipeline_settings(twilio_accounts_file=accounts_file)
    mine, theirs = standin.state.add_voice(account_sid=ACCOUNT_SID), standin.state.add_voice(account_sid=other)
    report = reconciler.run_once(settings, sources=["voice"], accounts=[other, "AC" + "0" * 32])
    assert [(r.account, [sid for sid, _, _ in r.found]) for r in report.rows] == [(other, [theirs.sid])]
    assert report.problems == [f"account AC{'0' * 32} is not configured"] and not report.ok
    both = reconciler.run_once(settings, sources=["voice"])
    assert sorted(r.account for r in both.rows) == sorted([ACCOUNT_SID, other])
    assert [sid for r in both.rows for sid, _, _ in r.found] == [mine.sid]


def _cli(settings: Settings, standin: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ, REDIS_URL=settings.redis_url or "", TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_BASE_URL=standin.base_url, TWILIO_VIDEO_BASE_URL=standin.base_url, TWILIO_MEDIA_BASE_URL=standin.base_url,
        RECONCILE_PAGE_SIZE=str(PAGE_SIZE), DATA_DIR=str(settings.data_dir), LOG_FORMAT="json",
    )
    command = [str(Path(sys.executable).with_name("recording-receiver")), "reconcile", *args]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_reconcile_command_prints_what_it_saw_found_missing_and_queued(
    settings: Settings, start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    receiver = start_receiver(settings)
    world = build_world(standin, receiver)
    done = _cli(settings, standin, "--source", "legacy", "--source", "video", "--account", ACCOUNT_SID)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("reconcile pass started ")
    legacy_line = next(line for line in lines if line.startswith("legacy "))
    assert legacy_line.split()[1:2] == [ACCOUNT_SID] and legacy_line.split()[3:7] == ["7", "5", "5", "0"]
    for rec in world.missing["legacy"] + world.missing["video"]:
        assert any(rec.sid in line and line.strip().startswith("queued") for line in lines), rec.sid
    assert lines[-1] == "total: seen 14  missing 9  queued 9  duplicates 0  errors 0  -> ok"
    bad = _cli(settings, standin, "--since", "last tuesday")
    # A user's mistake: one line on stderr, exit 2, no pass run (tests/readme/test_readme_cli_mistakes.py).
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr.splitlines() == [
        "recording-receiver reconcile: Invalid value for --since: expected an ISO 8601 date or datetime, e.g. 2026-11-01 (see --help)"
    ]
