"""The exporter in process against the stand-in and a real Redis: dry run, window, settling of jobs in flight."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis import Redis

from receiver.kernel import keys
from receiver.kernel.events import Source
from workers.commands.settings import Settings
from workers.export import settle
from workers.export.exporter import Exporter, Progress
from workers.export.plan import Plan
from workers.jobs.context import WorkerContext

OLDEST = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture
def ctx(pipeline_settings: Callable[..., Settings]) -> Iterator[WorkerContext]:
    context = WorkerContext(pipeline_settings())
    yield context
    context.close()


def _plan(ctx: WorkerContext, until: datetime | None = None) -> Plan:
    return Plan(OLDEST, until, tuple(Source), tuple(ctx.accounts))


def test_a_dry_run_counts_per_source_and_account_and_queues_nothing(ctx: WorkerContext, standin: Any, redis: Redis) -> None:
    for source in ("voice", "video", "media", "legacy"):
        standin.state.add_many(source, 7, OLDEST, timedelta(hours=1))
    standin.state.add_voice(date_created=OLDEST - timedelta(days=3))  # before the window
    standin.state.add_voice(date_created=OLDEST + timedelta(hours=2, seconds=30), status="processing")  # pending
    seen: list[Progress] = []
    progress = Exporter(ctx, _plan(ctx), threading.Event(), seen.append, dry_run=True).run()
    assert progress.state == "finished" and seen
    assert {row.source: (row.listed, row.queued, row.pending) for row in progress.rows} == {
        "voice": (8, 7, 1), "video": (7, 7, 0), "media": (7, 7, 0), "legacy": (7, 7, 0)}
    assert redis.llen("rq:queue:recordings") == 0 and not redis.exists(keys.EXPORT_RUN, keys.EXPORT_ROWS)
    assert redis.hget(keys.EXPORT_ESTIMATES, _plan(ctx).name) == b"28"


def test_until_bounds_the_window_on_every_source(ctx: WorkerContext, standin: Any) -> None:
    for source in ("voice", "video", "media", "legacy"):
        standin.state.add_many(source, 10, OLDEST, timedelta(hours=1))
    until = OLDEST + timedelta(hours=3, minutes=30)  # the first four of each
    progress = Exporter(ctx, _plan(ctx, until), threading.Event(), lambda p: None, dry_run=True).run()
    assert {row.source: row.queued for row in progress.rows} == dict.fromkeys(("voice", "video", "media", "legacy"), 4)


def test_a_job_seen_gone_is_failed_only_after_the_grace_and_an_archive_wins(redis: Redis) -> None:
    missing: dict[str, float] = {}
    entry = {"rr-voice-RE1-completed": settle.in_flight_entry("voice", "RE1", "AC1")}
    assert settle.check(redis, entry, missing) == []  # gone just now: not settled yet
    redis.hset(keys.recording_key("voice", "RE1"), "archived_at", "1")
    assert [s.verdict for s in settle.check(redis, entry, missing)] == ["archived"] and missing == {}
    redis.delete(keys.recording_key("voice", "RE1"))
    missing["rr-voice-RE1-completed"] = 0.0  # seen gone long ago
    (lost,) = settle.check(redis, entry, missing)
    assert lost.verdict == "failed" and "gone" in (lost.cause or "")
