"""One reconciler pass: list each account's recordings per source, and queue those no callback brought.

A recording found missing becomes the very event its callback would have produced and goes
through the receiver's own dedupe-and-enqueue script, so a pass and a late callback can never
both act: whichever comes second is a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from redis.exceptions import RedisError

from receiver.kernel import keys, logs
from receiver.kernel.accounts import Account
from receiver.kernel.enqueue_script import Outcome
from receiver.kernel.events import FINAL_STATUSES, RecordingEvent, Source, Status
from receiver.kernel.sids import is_sid
from workers import failures
from workers.jobs.context import WorkerContext
from workers.reconcile.report import Report, Row
from workers.reconcile.watermarks import Tracker, Watermarks
from workers.settings import WorkerSettings
from workers.twilio_rest.paging import Backoff
from workers.twilio_rest.sources import Listed, api_for
from workers.twilio_rest.timestamps import parse_since

log = logs.get("workers.reconcile.reconciler")

SID_PREFIX = {Source.VOICE: "RE", Source.VIDEO: "RT", Source.MEDIA: "KV", Source.LEGACY: "RE"}
# Ledger lookups go to Redis in one round trip per this many listed recordings.
BATCH = 200

T = TypeVar("T")


def run_once(
    settings: WorkerSettings, sources: Sequence[str] = (), since: str | datetime | None = None, accounts: Sequence[str] = ()
) -> Report:
    """The `reconcile` command: a pass with its own context (Redis, Twilio clients)."""
    return run_pass(WorkerContext(settings), sources, since, accounts)


def run_pass(
    ctx: WorkerContext, sources: Sequence[str] = (), since: str | datetime | None = None, accounts: Sequence[str] = ()
) -> Report:
    """Every chosen account × source; sources default to RECONCILE_SOURCES, accounts to all configured."""
    report = Report(started=datetime.now(UTC))
    try:
        start = parse_since(since) if since else None
    except ValueError:
        report.problems.append(f"--since {str(since)[:40]!r} is not an ISO 8601 date or datetime")
        return report
    chosen_sources = _sources(sources or ctx.settings.reconcile_sources.split(","), report)
    for account in _accounts(ctx, accounts, report):
        for source in chosen_sources:
            report.rows.append(_reconcile(ctx, account, source, start, report.started))
    report.finished = datetime.now(UTC)
    _keep_summary(ctx, report)
    return report


def _sources(names: Iterable[str], report: Report) -> list[Source]:
    chosen = []
    for name in dict.fromkeys(n.strip().lower() for n in names if n.strip()):
        try:
            chosen.append(Source(name))
        except ValueError:
            report.problems.append(f"unknown source {name[:20]!r}")
    return chosen


def _accounts(ctx: WorkerContext, wanted: Sequence[str], report: Report) -> list[Account]:
    if not wanted:
        configured: list[Account] = list(ctx.accounts)
        if not configured:
            report.problems.append("no Twilio account is configured")
        return configured
    chosen = []
    for sid in dict.fromkeys(wanted):
        account = ctx.accounts.get(sid)
        if account is None:
            report.problems.append(f"account {sid[:34]} is not configured")
        else:
            chosen.append(account)
    return chosen


def _reconcile(ctx: WorkerContext, account: Account, source: Source, start: datetime | None, started: datetime) -> Row:
    settings = ctx.settings
    lookback_start = started - timedelta(seconds=settings.reconcile_lookback_seconds)
    row = Row(source.value, account.sid)
    backoff = Backoff(base=settings.retry_base_seconds)
    try:
        marks = Watermarks(ctx.redis)
        stored = marks.get(account.sid, source.value)
        usual_start = stored or lookback_start
        row.since = since = start or usual_start
        tracker = Tracker(timedelta(seconds=settings.reconcile_overlap_seconds), hold_floor=lookback_start)
        listing = api_for(source).list_recordings(ctx, account, since, backoff)
        for batch in batches(listing, BATCH):
            _settle(ctx, account, source, since, batch, row, tracker)
        mark = tracker.next_mark()
        # A --since later than the usual start left a gap this pass never listed: keep the mark.
        if mark is not None and since <= usual_start:
            stored = marks.advance(account.sid, source.value, mark)
        row.watermark = stored
    except Exception as exc:
        row.error = describe(exc)
    row.backoffs = backoff.waits
    log.info("reconciled", **{k: v for k, v in row.as_dict().items() if v is not None})
    return row


def batches(items: Iterator[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _settle(
    ctx: WorkerContext, account: Account, source: Source, since: datetime, batch: list[Listed], row: Row, tracker: Tracker
) -> None:
    """Count what was listed; queue the final ones that no callback (or earlier pass) brought."""
    finals: list[RecordingEvent] = []
    for item in batch:
        if not is_sid(item.sid, SID_PREFIX[source]):
            raise failures.PermanentError(f"the list returned {item.sid[:40]!r}, not a {SID_PREFIX[source]}… SID")
        if item.date_created is not None and item.date_created < since:
            continue  # listed by day only (2008), or a server that ignores the date filter
        row.seen += 1
        tracker.saw(item.date_created, pending=item.status is None)
        if item.status in FINAL_STATUSES:
            finals.append(item.event(source, account.sid))
        elif item.status is Status.DELETED:
            row.deleted += 1  # its media is gone: nothing left worth a job
        else:
            row.pending += 1
    _queue_missing(ctx, finals, row)


def _queue_missing(ctx: WorkerContext, events: list[RecordingEvent], row: Row) -> None:
    for event, verdict in queue_missing(ctx, events):
        if verdict == "deleted":
            row.deleted += 1
        elif verdict != "known":
            row.missing += 1
            if verdict == Outcome.QUEUED.value:
                row.queued += 1
            else:
                row.duplicates += 1
            row.found.append((event.sid, event.status.value, verdict))


def queue_missing(ctx: WorkerContext, events: list[RecordingEvent]) -> Iterator[tuple[RecordingEvent, str]]:
    """Each event with what became of it: "known" (its ledger entry exists), "deleted" (by us, at
    Twilio), else queued through the shared dedupe: "queued" or "duplicate". Also the export's."""
    if not events:
        return
    # A plain read first, so known recordings do not get a "duplicate" line on every pass. One we
    # deleted at Twilio is never queued again, whatever a (lagging) list says of it, long after
    # its ledger entry has expired.
    pipe = ctx.redis.pipeline(transaction=False)
    for event in events:
        pipe.exists(keys.ledger_key(event))
        pipe.hexists(keys.deletion_key(event.source.value, event.sid), "deleted_at")
    replies = pipe.execute()
    for event, known, deleted_by_us in zip(events, replies[::2], replies[1::2], strict=True):
        if deleted_by_us:
            yield event, "deleted"
        elif known:
            yield event, "known"
        else:
            yield event, ctx.enqueuer.submit(event).outcome.value


def describe(exc: Exception) -> str:
    failure = failures.classify(exc)
    if failure is not None:
        return f"{failure.kind}: {failure.reason}"
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def _keep_summary(ctx: WorkerContext, report: Report) -> None:
    """The last pass, whole, for the console: replaced in one transaction, never merged."""
    try:
        pipe = ctx.redis.pipeline(transaction=True)
        pipe.delete(keys.RECONCILE_LAST)
        pipe.hset(keys.RECONCILE_LAST, mapping=report.summary())  # type: ignore[arg-type]
        pipe.execute()
    except RedisError as exc:
        report.problems.append(f"could not keep the pass summary in Redis: {type(exc).__name__}")
