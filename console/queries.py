"""The recordings list: filters, search and cursor pagination whose cost does not grow with the total."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from redis import Redis

from console import jobrefs
from console.replies import integer, text
from receiver.kernel import keys
from receiver.kernel.errors import RecordingReceiverError
from receiver.kernel.events import Source, Status
from receiver.kernel.sids import is_any_sid

SOURCES = tuple(s.value for s in Source)
STATUSES = tuple(s.value for s in Status)
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# A filter that intersects two indexes walks one and tests the other; past this many entries in
# one request it stops and offers to continue, so a rare combination never makes a slow page.
SCAN_BUDGET = 20_000
MAX_SEARCH_RESULTS = 500
PARENT_PREFIXES = ("CA", "CF", "RM")
ROW_FIELDS = (
    "status", "account_sid", "call_sid", "conference_sid", "room_sid", "archived_at",
    "error_code", "error_meaning", "not_found", "duration",
)
SEARCH_HINT = (
    "Search takes a RecordingSid (RE…, RT…, KV…), CallSid (CA…), ConferenceSid (CF…), RoomSid (RM…) or job id (rr-…)."
)


class BadFilter(RecordingReceiverError, ValueError):
    """A filter value the console cannot use; its message is shown to the operator."""


@dataclass(frozen=True)
class Filters:
    source: str = ""
    status: str = ""
    day_from: date | None = None
    day_to: date | None = None
    q: str = ""

    @classmethod
    def parse(cls, params: dict[str, str]) -> Filters:
        source = params.get("source", "").strip()
        status = params.get("status", "").strip()
        if source and source not in SOURCES:
            raise BadFilter(f"unknown source {source[:40]!r}")
        if status and status not in STATUSES:
            raise BadFilter(f"unknown status {status[:40]!r}")
        return cls(source, status, _day(params.get("from", "")), _day(params.get("to", "")), params.get("q", "").strip()[:100])

    @property
    def score_range(self) -> tuple[float, float]:
        """First-seen bounds in epoch ms; days are whole UTC days, both ends included."""
        low = _ms(self.day_from) if self.day_from else float("-inf")
        high = _ms(self.day_to + timedelta(days=1)) - 1 if self.day_to else float("inf")
        return low, high

    def query(self) -> dict[str, str]:
        """The filters as URL parameters, for links that keep them."""
        values = {"source": self.source, "status": self.status, "q": self.q,
                  "from": self.day_from.isoformat() if self.day_from else "",
                  "to": self.day_to.isoformat() if self.day_to else ""}
        return {k: v for k, v in values.items() if v}


def _day(value: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadFilter(f"dates are YYYY-MM-DD, not {value[:20]!r}") from None


def _ms(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last score shown and how many entries at that score were consumed.

    Scores (first-seen ms) can tie, so the score alone would skip or repeat recordings.
    """

    score: float
    skip: int

    def encode(self) -> str:
        return f"{int(self.score)}.{self.skip}"

    @classmethod
    def decode(cls, value: str) -> Cursor | None:
        match = re.fullmatch(r"(-?\d{1,16})\.(\d{1,9})", value.strip())
        return cls(float(match.group(1)), int(match.group(2))) if match else None


@dataclass
class Row:
    source: str
    sid: str
    first_seen: float
    fields: dict[str, str]
    failed_job: str | None = None

    @property
    def status(self) -> str:
        return self.fields.get("status", "")

    @property
    def parent(self) -> str:
        return self.fields.get("call_sid") or self.fields.get("conference_sid") or self.fields.get("room_sid") or ""

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "sid": self.sid, "first_seen": self.first_seen / 1000,
                "failed_job": self.failed_job, **self.fields}


@dataclass
class Page:
    rows: list[Row]
    total: int | None
    next_cursor: str | None = None
    scanned: int = 0
    partial: bool = False
    search: bool = False
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"recordings": [r.to_json() for r in self.rows], "total": self.total, "next_cursor": self.next_cursor,
                "scanned": self.scanned, "partial": self.partial, "search": self.search, "notes": self.notes}


class Recordings:
    """Read side of the catalog for the list and search pages."""

    def __init__(self, redis: Redis, queue_name: str) -> None:
        self.redis = redis
        self.failed_key = jobrefs.failed_registry_key(queue_name)

    def page(self, filters: Filters, cursor: Cursor | None = None, limit: int = PAGE_SIZE) -> Page:
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        if filters.q:
            return self._search(filters)
        primary, secondary, total = self._plan(filters)
        low, high = filters.score_range
        found: list[tuple[str, float]] = []
        scanned = 0
        # A cursor above the date range (an edited URL) starts from the range's top instead.
        start: tuple[float | None, int] = (cursor.score, cursor.skip) if cursor and cursor.score <= high else (None, 0)
        state = start  # where the walk stands after the last entry consumed
        exhausted = False
        for member, score, state in self._walk(primary, secondary, low, high, start, limit):  # noqa: B007 -- read after the loop
            scanned += 1
            if member is not None:
                found.append((member, score))
                if len(found) == limit:
                    break
            if scanned >= SCAN_BUDGET:
                break
        else:
            exhausted = True
        page = Page(self._rows(found), total, scanned=scanned)
        if cursor and not found:
            page.notes.append("No older recordings match.")
        if not exhausted and state[0] is not None and self._more(primary, low, state):
            page.next_cursor = Cursor(state[0], state[1]).encode()
            page.partial = len(found) < limit
        return page

    def _plan(self, filters: Filters) -> tuple[str, str | None, int | None]:
        """The index to walk (the narrower one), the one to test membership in, and a total."""
        candidates = []
        if filters.source:
            candidates.append(keys.source_index(filters.source))
        if filters.status:
            candidates.append(keys.status_index(filters.status))
        if not candidates:
            candidates = [keys.RECORDINGS_INDEX]
        low, high = filters.score_range
        pipe = self.redis.pipeline(transaction=False)
        for key in candidates:
            pipe.zcount(key, low, high)
        counts = [integer(c) for c in pipe.execute()]
        order = sorted(range(len(candidates)), key=lambda i: counts[i])
        primary = candidates[order[0]]
        secondary = candidates[order[1]] if len(candidates) > 1 else None
        # With two filters the exact total would need a full intersection; show none rather than a wrong one.
        return primary, secondary, counts[order[0]] if secondary is None else None

    def _walk(
        self, primary: str, secondary: str | None, low: float, high: float, state: tuple[float | None, int], limit: int
    ) -> Iterator[tuple[str | None, float, tuple[float | None, int]]]:
        """Entries newest first from `state` on; member is None for one the secondary index lacks."""
        batch = limit + 1 if secondary is None else max(limit * 4, 500)
        while True:
            top, skip = state
            # Typed loosely by redis-py: with scores it is a list of (member, score) pairs.
            entries: Any = self.redis.zrevrangebyscore(
                primary, high if top is None else top, low, start=skip, num=batch, withscores=True
            )
            if not entries:
                return
            members = [text(m) for m, _ in entries]
            present = [True] * len(members)
            if secondary is not None:
                present = [s is not None for s in self.redis.zmscore(secondary, members)]
            for (member, score), keep in zip(zip(members, (float(s) for _, s in entries), strict=False), present, strict=False):
                state = (score, state[1] + 1) if score == state[0] else (score, 1)
                yield (member if keep else None), score, state
            if len(entries) < batch:
                return

    def _more(self, primary: str, low: float, state: tuple[float | None, int]) -> bool:
        top, skip = state
        return top is not None and bool(self.redis.zrevrangebyscore(primary, top, low, start=skip, num=1))

    def _rows(self, found: list[tuple[str, float]]) -> list[Row]:
        """One round trip for the whole page: each recording's fields and its failed jobs."""
        pipe = self.redis.pipeline(transaction=False)
        for member, _ in found:
            source, _, sid = member.partition(":")
            pipe.hmget(keys.recording_key(source, sid), ROW_FIELDS)
            pipe.zmscore(self.failed_key, [jobrefs.job_id(source, sid, status) for status in STATUSES])
        replies = pipe.execute()
        rows = []
        for index, (member, score) in enumerate(found):
            source, _, sid = member.partition(":")
            values, failed = replies[2 * index], replies[2 * index + 1]
            fields = {name: text(v) for name, v in zip(ROW_FIELDS, values, strict=False) if v is not None}
            failed_status = next((s for s, f in zip(STATUSES, failed, strict=False) if f is not None), None)
            rows.append(Row(source, sid, score, fields, jobrefs.job_id(source, sid, failed_status) if failed_status else None))
        return rows

    def _search(self, filters: Filters) -> Page:
        members, notes = self.find(filters.q)
        scores = self.redis.zmscore(keys.RECORDINGS_INDEX, members) if members else []
        found = sorted(((m, float(s)) for m, s in zip(members, scores, strict=False) if s is not None), key=lambda e: -e[1])
        rows = [r for r in self._rows(found[:MAX_SEARCH_RESULTS]) if _matches(r, filters)]
        if not rows and not notes:
            notes.append(f"Nothing found for {filters.q}.")
        return Page(rows, len(rows), search=True, notes=notes)

    def find(self, query: str) -> tuple[list[str], list[str]]:
        """Members ("source:sid") a query names: a recording, its parent call/conference/room, a job."""
        query = query.strip()
        ref = jobrefs.parse(query)
        if ref is not None:
            return [f"{ref.source}:{ref.sid}"], []
        # People paste SIDs from anywhere; Twilio's own are an upper-case prefix and lower-case hex.
        query = query[:2].upper() + query[2:]
        if not is_any_sid(query):
            return [], [SEARCH_HINT]
        variants = list(dict.fromkeys([query, query[:2] + query[2:].lower()]))
        if query[:2] in PARENT_PREFIXES:
            pipe = self.redis.pipeline(transaction=False)
            for variant in variants:
                pipe.srandmember(keys.related_key(variant), MAX_SEARCH_RESULTS)
            return sorted({text(m) for reply in pipe.execute() for m in reply}), []
        return [f"{source}:{variant}" for source in SOURCES for variant in variants], []


def _matches(row: Row, filters: Filters) -> bool:
    low, high = filters.score_range
    return (
        (not filters.source or row.source == filters.source)
        and (not filters.status or row.status == filters.status)
        and low <= row.first_seen <= high
    )
