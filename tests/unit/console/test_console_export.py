"""The overview shows a running export's progress, read from what the export command writes to Redis."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from redis import Redis

from receiver.kernel.accounts import Account
from receiver.kernel.events import Source
from tests.conftest import ACCOUNT_SID
from tests.support.console.helpers import sign_in
from workers.commands.settings import Settings
from workers.export.exporter import Progress, _fields
from workers.export.plan import Plan
from workers.export.rows import ExportRow
from workers.export.state import ExportState


def test_overview_shows_the_exports_progress_per_source_and_account(
    console_settings: Callable[..., Settings], start_console: Callable[[Settings], str], redis: Redis,
) -> None:
    rows = [ExportRow("voice", ACCOUNT_SID, listed=1200, queued=1100, archived=900, failed=3, done=True),
            ExportRow("legacy", ACCOUNT_SID, listed=40, queued=40, archived=12, error="transient: HTTP 503")]
    plan = Plan(datetime(2019, 1, 1, tzinfo=UTC), None, (Source.VOICE, Source.LEGACY), (Account(ACCOUNT_SID, ()),))
    progress = Progress("running", rows, in_flight=225, rate=41.5, eta_seconds=7.0, listing_done=False, dry_run=False, resumed=False)
    ExportState(redis).publish(_fields(progress, plan))

    client = sign_in(start_console(console_settings()))
    body = client.get("/api/overview").json()["export"]
    assert body["state"] == "running" and body["archived"] == "912" and body["in_flight"] == "225"
    assert {row["source"]: row["archived"] for row in body["rows"]} == {"voice": 900, "legacy": 12}
    page = client.get("/").text
    assert "Backlog export" in page and "1240 listed" in page and "41.50/s" in page and "ETA 7s" in page
    assert "transient: HTTP 503" in page
