"""The README's reconciler: its printed report, exit code, listings per API, paging, back-off, watermark and schedule."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from receiver.kernel import keys
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, Receiver, drain
from tests.e2e.test_voice_pipeline import callback
from tests.support import readme
from workers.commands.settings import Settings
from workers.reconcile import reconciler
from workers.reconcile.report import Report, Row, _row_lines
from workers.twilio_rest.paging import Backoff
from workers.twilio_rest.timestamps import parse, parse_since

ROOT = readme.ROOT
LISTS = {
    "voice": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings.json", "video": "/v1/Recordings",
    "media": "/v1/MediaRecordings", "legacy": f"/2008-08-01/Accounts/{ACCOUNT_SID}/Recordings",
}


def _queries(standin: Any, source: str) -> list[dict[str, list[str]]]:
    return [parse_qs(r["query"], keep_blank_values=True) for r in standin.state.requests("GET") if r["path"] == LISTS[source]]


def _cli(settings: Settings, standin: Any, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "TWILIO_", "RECONCILE_", "RETRY_", "LOG_"))}
    env.update(
        REDIS_URL=settings.redis_url or "", TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_BASE_URL=standin.base_url, TWILIO_VIDEO_BASE_URL=standin.base_url, TWILIO_MEDIA_BASE_URL=standin.base_url,
        DATA_DIR=str(settings.data_dir), LOG_FORMAT="json", **extra,
    )
    command = [str(Path(sys.executable).with_name("recording-receiver")), "reconcile", *args]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


# -- what it prints, and its exit code ------------------------------------------------------------

def _sample() -> list[str]:
    return list(readme.block_after("It prints, per source and account").lines)


def _header() -> str:
    return Report(started=datetime.now(UTC)).render().splitlines()[1]


def test_the_readmes_sample_report_is_exactly_what_the_command_prints() -> None:
    sample = _sample()
    assert re.fullmatch(r"reconcile pass started \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", sample[0]), sample[0]
    assert sample[1] == _header()
    rows = [line for line in sample[2:] if re.match(r"^(voice|video|media|legacy) ", line)]
    assert rows, "the sample shows no row"
    for line in rows:
        source, account, since, *counts, mark = line.split()
        row = Row(source, account, since=parse(since), watermark=parse(mark),
                  **dict(zip(("seen", "missing", "queued", "duplicates", "pending", "deleted", "backoffs"), map(int, counts), strict=False)))
        assert _row_lines(row)[0] == line, "a row of the sample is not what the code prints"
    found = [line for line in sample if line.startswith("    ")]
    for line in found:
        outcome, source, sid, status = line.split()
        row = Row(source, ACCOUNT_SID)
        row.found.append((sid, status, outcome))
        assert _row_lines(row)[1] == line
    assert re.fullmatch(r"total: seen \d+  missing \d+  queued \d+  duplicates \d+  errors \d+  -> ok", sample[-1]), sample[-1]


def test_the_command_prints_per_source_and_account_and_exits_0(
    pipeline_settings: Callable[..., Settings], start_receiver: Callable[[Settings], Receiver], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings()
    receiver = start_receiver(settings)
    heard, lost = standin.state.add_voice(account_sid=ACCOUNT_SID), standin.state.add_voice(account_sid=ACCOUNT_SID)
    assert receiver.post(receiver.url(), callback(heard)).status_code == 204
    done = _cli(settings, standin, "--source", "voice", "--account", ACCOUNT_SID)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("reconcile pass started ") and lines[1] == _header()
    [row] = [line for line in lines if line.startswith("voice ")]
    assert row.split()[1] == ACCOUNT_SID and row.split()[3:6] == ["2", "1", "1"]  # seen, missing, queued
    assert lines[2:] == [row, f"    queued     voice {lost.sid} completed", lines[-1]]
    assert lines[-1] == "total: seen 2  missing 1  queued 1  duplicates 0  errors 0  -> ok"


def test_a_failed_listing_is_retried_5_times_then_reported_and_the_command_exits_1(
    pipeline_settings: Callable[..., Settings], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings()
    standin.state.add_voice(account_sid=ACCOUNT_SID)
    standin.state.add_fault("GET", r"/Recordings\.json$", 500, times=-1)
    done = _cli(settings, standin, "--source", "voice", RETRY_BASE_SECONDS="0")
    assert done.returncode == 1, done.stdout + done.stderr
    assert [r["status"] for r in standin.state.requests("GET", LISTS["voice"])] == [500] * 6  # one try, five retries
    [row] = [line.split() for line in done.stdout.splitlines() if line.startswith("voice ")]
    assert row[9] == "5" and row[10] == "-"  # backoffs, and no watermark
    assert "    error      transient: " in done.stdout and done.stdout.rstrip().endswith("-> FAILED")
    assert redis.get(keys.watermark_key(ACCOUNT_SID, "voice")) is None
    # The next pass tries again, from the same place, and gets through.
    standin.state.clear_faults()
    again = _cli(settings, standin, "--source", "voice", RETRY_BASE_SECONDS="0")
    assert again.returncode == 0 and "queued 1" in again.stdout.splitlines()[-1]


def test_a_retry_after_over_60_seconds_is_not_waited_for_and_waits_are_capped(
    pipeline_settings: Callable[..., Settings], standin: Any
) -> None:
    standin.state.add_fault("GET", r"/Recordings\.json$", 429, times=-1, retry_after="61")
    report = reconciler.run_once(pipeline_settings(), sources=["voice"])
    [row] = report.rows
    assert not report.ok and row.backoffs == 0 and row.error and "429" in row.error
    assert len(standin.state.requests("GET", LISTS["voice"])) == 1
    # The reconciler's back-off: 5 retries, no wait above 60 s however large the base.
    backoff = Backoff(base=1000.0)
    assert (backoff.attempts, backoff.cap) == (5, 60.0)
    assert all(0 < (backoff.delay(attempt, None) or 0) <= 60 for attempt in range(5))
    assert all(58 <= (backoff.delay(0, 58.0) or 0) <= 60 for _ in range(200))  # Retry-After honoured, jitter capped
    assert backoff.delay(5, None) is None


# -- how each API is listed ------------------------------------------------------------------------

def test_each_api_is_listed_with_its_own_date_filter_and_a_page_size_clamped_to_its_maximum(
    pipeline_settings: Callable[..., Settings], standin: Any
) -> None:
    settings = pipeline_settings(reconcile_page_size=5000)
    report = reconciler.run_once(settings)
    assert report.ok, report.render()
    voice, video, media, legacy = (_queries(standin, s)[0] for s in ("voice", "video", "media", "legacy"))
    since = report.rows[0].since
    assert since is not None
    iso = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    # `DateCreated>=` goes on the wire as `DateCreated%3E=…`, which reads back as the key "DateCreated>".
    assert voice["DateCreated>"] == [iso], voice
    assert voice["IncludeSoftDeleted"] == ["true"] and voice["PageSize"] == ["1000"]
    assert video["DateCreatedAfter"] == [iso] and video["PageSize"] == ["100"]
    assert not [k for k in media if "Date" in k] and media["Order"] == ["desc"] and media["PageSize"] == ["1000"]
    day = since.date().isoformat()
    assert legacy["DateCreated>"] == [day], legacy
    assert legacy["PageSize"] == ["1000"]


def test_media_is_listed_newest_first_and_paging_stops_at_the_first_older_recording(
    pipeline_settings: Callable[..., Settings], standin: Any
) -> None:
    now = datetime.now(UTC)
    for hours in (30, 20, 10):  # older than the lookback below
        standin.state.add_media(account_sid=ACCOUNT_SID, date_created=now - timedelta(hours=hours))
    fresh = [standin.state.add_media(account_sid=ACCOUNT_SID, date_created=now - timedelta(minutes=m)) for m in (30, 20, 10)]
    settings = pipeline_settings(reconcile_page_size=2, reconcile_lookback_seconds=3600)
    [row] = reconciler.run_once(settings, sources=["media"]).rows
    assert row.seen == 3 and sorted(sid for sid, _, _ in row.found) == sorted(r.sid for r in fresh)
    assert len(_queries(standin, "media")) == 2  # [new, new], [new, old]: no third page


def test_the_first_pass_looks_back_reconcile_lookback_seconds(pipeline_settings: Callable[..., Settings], standin: Any) -> None:
    now = datetime.now(UTC)
    recent = standin.state.add_voice(account_sid=ACCOUNT_SID, date_created=now - timedelta(minutes=30))
    standin.state.add_voice(account_sid=ACCOUNT_SID, date_created=now - timedelta(hours=2))
    report = reconciler.run_once(pipeline_settings(reconcile_lookback_seconds=3600), sources=["voice"])
    [row] = report.rows
    assert row.since is not None and abs((report.started - row.since).total_seconds() - 3600) < 2
    assert [sid for sid, _, _ in row.found] == [recent.sid]


def test_since_moves_the_watermark_only_when_it_starts_at_or_before_it(
    pipeline_settings: Callable[..., Settings], standin: Any, redis: Redis
) -> None:
    settings = pipeline_settings(reconcile_overlap_seconds=0)
    now = datetime.now(UTC)
    first = standin.state.add_voice(account_sid=ACCOUNT_SID, date_created=now - timedelta(minutes=60))
    reconciler.run_once(settings, sources=["voice"])
    mark = first.date_created.replace(microsecond=0)
    stored = lambda: parse(redis.get(keys.watermark_key(ACCOUNT_SID, "voice")).decode())  # noqa: E731
    assert stored() == mark
    standin.state.add_voice(account_sid=ACCOUNT_SID, date_created=now - timedelta(minutes=5))
    later = reconciler.run_once(settings, sources=["voice"], since=(now - timedelta(minutes=20)).isoformat())
    assert later.rows[0].seen == 1 and stored() == mark  # a gap before its start was never listed
    earlier = reconciler.run_once(settings, sources=["voice"], since=(now - timedelta(minutes=90)).isoformat())
    assert earlier.rows[0].seen == 2 and stored() == (now - timedelta(minutes=5)).replace(microsecond=0)


def test_since_takes_a_date_or_a_datetime_as_the_readme_writes_them() -> None:
    [synopsis] = [c for _, c in readme.shell_commands() if " reconcile " in c]
    shown = re.search(r"--since (\S+)", synopsis)
    assert shown
    value = shown.group(1)  # 2024-05-01[T10:00:00Z]
    date, optional = value.split("[")
    assert parse_since(date) == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_since(date + optional.rstrip("]")) == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_the_redis_keys_the_readme_names_are_the_ones_used() -> None:
    text = readme.text()
    assert "`rr:reconcile:last`" in text and keys.RECONCILE_LAST == "rr:reconcile:last"
    written = re.search(r"`(rr:reconcile:watermark:[^`]+)`", text)
    assert written and written.group(1).format(AC=ACCOUNT_SID, source="video") == keys.watermark_key(ACCOUNT_SID, "video")


# -- the schedule --------------------------------------------------------------------------------

def test_the_scheduled_pass_covers_reconcile_sources_every_ten_minutes_by_default(
    pipeline_settings: Callable[..., Settings], standin: Any, redis: Redis
) -> None:
    assert Settings.model_fields["reconcile_interval_seconds"].default == 10 * 60
    settings = pipeline_settings(reconcile_interval_seconds=1_000_000, reconcile_sources="video,legacy")
    Queue("recordings", connection=redis, serializer=JSONSerializer).enqueue(keys.RECONCILE_FUNCTION, {"v": 1}, job_id="rr-reconcile-now")
    drain(settings)
    listed = {source for source, path in LISTS.items() if standin.state.requests("GET", path)}
    assert listed == {"video", "legacy"}
    assert set(json.loads(redis.hget(keys.RECONCILE_LAST, "sources") or "{}")) == {"video", "legacy"}
