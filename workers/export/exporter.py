"""The export loop: list each account and source page by page, queue what is missing, pace by jobs in flight.

It reuses the reconciler's listing and its dedupe-and-enqueue (`reconciler.queue_missing`), so an
exported recording gets the very job id its callback would have: whichever comes second is a
duplicate. Nothing listed is kept beyond one batch; the cursor after each batch is in Redis.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from rq import Queue

from receiver.kernel import keys, logs
from receiver.kernel.accounts import Account
from receiver.kernel.events import FINAL_STATUSES, RecordingEvent, Source, Status
from receiver.kernel.sids import is_sid
from workers import failures
from workers.export import settle
from workers.export.plan import Plan
from workers.export.rows import ExportRow
from workers.export.state import ExportState
from workers.jobs.context import WorkerContext
from workers.reconcile.reconciler import BATCH, SID_PREFIX, batches, describe, queue_missing
from workers.twilio_rest.paging import Backoff
from workers.twilio_rest.sources import Listed, api_for
from workers.twilio_rest.timestamps import iso_z

log = logs.get("workers.export.exporter")

# How often jobs in flight are checked while waiting for room, and progress is published.
POLL_SECONDS = 0.25
TICK_SECONDS = 1.0
# Throughput is measured over this last stretch (a whole-run average hides a slowdown).
RATE_WINDOW_SECONDS = 30.0
# A long export outlasts a 429 storm: more patience than a reconciler pass, whose next pass retries.
LIST_ATTEMPTS = 10


@dataclass
class Progress:
    """A snapshot for the display and the console."""

    state: str
    rows: list[ExportRow]
    in_flight: int
    rate: float
    eta_seconds: float | None
    listing_done: bool
    dry_run: bool
    resumed: bool
    causes: dict[str, int] = field(default_factory=dict)

    def total(self, name: str) -> int:
        return sum(int(getattr(row, name)) for row in self.rows)


Listener = Callable[[Progress], None]


class Exporter:
    def __init__(self, ctx: WorkerContext, plan: Plan, stop: threading.Event, on_progress: Listener, dry_run: bool = False) -> None:
        self.ctx, self.plan, self.stop, self.on_progress, self.dry_run = ctx, plan, stop, on_progress, dry_run
        self.state = ExportState(ctx.redis)
        self.rows: list[ExportRow] = []
        self.resumed = False
        self._max = ctx.settings.export_max_in_flight
        self._rq_queue = Queue(ctx.settings.queue_name, connection=ctx.redis)
        self._settled: deque[tuple[float, int]] = deque()
        self._last_tick = 0.0
        self._listing_done = False
        self._estimate: int | None = None
        self._missing: dict[str, float] = {}

    def run(self, restart: bool = False) -> Progress:
        fresh = [ExportRow(s.value, a.sid) for a in self.plan.accounts for s in self.plan.sources]
        if self.dry_run:
            self.rows = fresh
            return self._run_rows()
        self.state.lock()
        try:
            self.rows, self.resumed = self.state.begin(self.plan.name, fresh, restart)
            self._estimate = self.state.estimate(self.plan.name)
            self.state.publish({"resumed_at" if self.resumed else "started_at": f"{time.time():.3f}"})
            return self._run_rows()
        finally:
            self.state.unlock()

    def _run_rows(self) -> Progress:
        accounts = {a.sid: a for a in self.plan.accounts}
        for row in self.rows:
            if self.stop.is_set():
                break
            if not row.done:
                self._export_row(accounts[row.account], Source(row.source), row)
        self._listing_done = not self.stop.is_set()
        while not self.dry_run and not self.stop.is_set() and self.state.in_flight_count():
            self._poll()
            self._tick(force=False)
            self.stop.wait(POLL_SECONDS)
        if self.dry_run and self._listing_done:
            self.state.keep_estimate(self.plan.name, sum(row.queued for row in self.rows))
        return self._tick(force=True, final=True)

    # -- one account and source ------------------------------------------------------

    def _export_row(self, account: Account, source: Source, row: ExportRow) -> None:
        row.error = None
        backoff = Backoff(base=max(self.ctx.settings.retry_base_seconds, 1.0), attempts=LIST_ATTEMPTS)
        until = row.cursor or self.plan.until
        try:
            listing = api_for(source).list_recordings(self.ctx, account, self.plan.since, backoff, until=until)
            for batch in batches(listing, BATCH):
                self._wait_out_throttle(account)
                self._take(account, source, row, batch, until)
                if self.stop.is_set():
                    return
            row.done = True
        except Exception as exc:
            row.error = describe(exc)
            log.warning("export listing failed", source=source.value, account=account.sid, error=row.error)
        finally:
            self._save(row)

    def _take(self, account: Account, source: Source, row: ExportRow, batch: list[Listed], until: datetime | None) -> None:
        finals: list[RecordingEvent] = []
        oldest: datetime | None = None
        listed = pending = deleted = 0
        for item in batch:
            if not is_sid(item.sid, SID_PREFIX[source]):
                raise failures.PermanentError(f"the list returned {item.sid[:40]!r}, not a {SID_PREFIX[source]}… SID")
            created = item.date_created
            if created is not None and (created < self.plan.since or (until is not None and created > until)):
                continue  # a day-only filter (2008) or none at all (media) lists a few outside
            if created is not None and (oldest is None or created < oldest):
                oldest = created
            listed += 1
            if item.status in FINAL_STATUSES:
                finals.append(item.event(source, account.sid))
            elif item.status is Status.DELETED:
                deleted += 1
            else:
                pending += 1
        self._wait_for_room(len(finals))
        if self.stop.is_set() and not self.dry_run:
            return  # stopped while waiting: not queued, so neither counted nor past the cursor
        row.listed, row.pending, row.deleted = row.listed + listed, row.pending + pending, row.deleted + deleted
        self._queue(row, finals)
        if oldest is not None:
            row.cursor = oldest
        self._save(row)
        self._tick(force=False)

    def _queue(self, row: ExportRow, finals: list[RecordingEvent]) -> None:
        if self.dry_run:
            self._count_dry(row, finals)
            return
        fresh: dict[str, str] = {}
        for event, verdict in queue_missing(self.ctx, finals):
            if verdict == "queued":
                row.queued += 1
                fresh[keys.job_id(event)] = settle.in_flight_entry(event.source.value, event.sid, event.account_sid)
            elif verdict == "deleted":
                row.deleted += 1
            else:
                row.known += 1
        self.state.add_in_flight(fresh)

    def _count_dry(self, row: ExportRow, finals: list[RecordingEvent]) -> None:
        pipe = self.ctx.redis.pipeline(transaction=False)
        for event in finals:
            pipe.exists(keys.ledger_key(event))
            pipe.hexists(keys.deletion_key(event.source.value, event.sid), "deleted_at")
        replies = pipe.execute() if finals else []
        for known, deleted in zip(replies[::2], replies[1::2], strict=True):
            if deleted:
                row.deleted += 1
            elif known:
                row.known += 1
            else:
                row.queued += 1

    # -- pacing -----------------------------------------------------------------------

    def _wait_out_throttle(self, account: Account) -> None:
        while not self.stop.is_set():
            remaining = self.ctx.throttle.remaining(account.sid)
            if remaining <= 0:
                return
            self._tick(force=False)
            self.stop.wait(min(remaining, 1.0))

    def _wait_for_room(self, wanted: int) -> None:
        """Back-pressure: wait until this batch fits under the cap of jobs in flight and of the queue."""
        if self.dry_run:
            return
        while not self.stop.is_set():
            self._poll()
            in_flight = self.state.in_flight_count()
            if in_flight == 0 or (in_flight + wanted <= self._max and self._rq_queue.count < self._max):
                return
            self._tick(force=False)
            self.stop.wait(POLL_SECONDS)

    def _poll(self) -> None:
        done = settle.check(self.ctx.redis, self.state.in_flight(), self._missing)
        if not done:
            return
        rows = {row.key: row for row in self.rows}
        for item in done:
            row = rows.get(f"{item.source}:{item.account}")
            if row is None:
                continue
            if item.verdict == "archived":
                row.archived += 1
            elif item.verdict == "failed":
                row.failed += 1
                self.state.count_cause(f"{item.source}: {item.cause}")
            else:
                row.other += 1
        for row in rows.values():
            self._save(row)
        self.state.settled(item.job_id for item in done)
        self._settled.append((time.monotonic(), len(done)))

    def _save(self, row: ExportRow) -> None:
        if not self.dry_run:
            self.state.save_row(row)

    # -- progress ---------------------------------------------------------------------

    def _rate(self, now: float) -> float:
        while self._settled and now - self._settled[0][0] > RATE_WINDOW_SECONDS:
            self._settled.popleft()
        if not self._settled:
            return 0.0
        span = max(now - self._settled[0][0], TICK_SECONDS)
        return sum(n for _, n in self._settled) / span

    def _tick(self, force: bool, final: bool = False) -> Progress:
        now = time.monotonic()
        if not force and now - self._last_tick < TICK_SECONDS:
            return self._snapshot("running", 0, 0.0)
        self._last_tick = now
        in_flight = 0 if self.dry_run else self.state.in_flight_count()
        rate = self._rate(now)
        state = "running"
        if final:
            state = "finished" if self._listing_done and not in_flight and all(r.done for r in self.rows) else "stopped"
        progress = self._snapshot(state, in_flight, rate)
        if not self.dry_run:
            self.state.renew()
            self.state.publish(_fields(progress, self.plan))
            progress.causes = self.state.causes()
        self.on_progress(progress)
        return progress

    def _snapshot(self, state: str, in_flight: int, rate: float) -> Progress:
        progress = Progress(state, self.rows, in_flight, rate, None, self._listing_done, self.dry_run, self.resumed)
        expected = max(self._estimate or 0, progress.total("queued")) if (self._estimate or self._listing_done) else None
        settled = progress.total("archived") + progress.total("failed") + progress.total("other")
        if expected is not None and rate > 0:
            progress.eta_seconds = max(expected - settled, 0) / rate
        return progress


def _fields(progress: Progress, plan: Plan) -> dict[str, str]:
    fields = {name: str(progress.total(name)) for name in ("listed", "queued", "known", "archived", "failed", "other")}
    fields.update(
        state=progress.state, updated_at=f"{time.time():.3f}", in_flight=str(progress.in_flight),
        rate=f"{progress.rate:.2f}", eta=f"{progress.eta_seconds:.0f}" if progress.eta_seconds is not None else "",
        since=iso_z(plan.since), until=iso_z(plan.until) if plan.until else "",
        rows=json.dumps([{"source": r.source, "account": r.account, "listed": r.listed, "queued": r.queued,
                          "archived": r.archived, "failed": r.failed, "done": r.done, "error": r.error} for r in progress.rows]),
    )
    return fields
