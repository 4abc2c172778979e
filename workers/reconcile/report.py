"""What a reconciler pass saw, found missing and queued: printed by the CLI, kept in Redis for the console."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workers.twilio_rest.timestamps import iso_z

# Enough SIDs to act on from a terminal; the rest are counted, and every one is on its timeline.
SHOWN_PER_ROW = 50
_COUNTS = ("seen", "missing", "queued", "duplicates", "pending", "deleted", "backoffs")


@dataclass
class Row:
    """One account and source in one pass."""

    source: str
    account: str
    since: datetime | None = None
    seen: int = 0
    missing: int = 0
    queued: int = 0
    # Missing when checked, yet a callback got there first: the shared dedupe did its job.
    duplicates: int = 0
    pending: int = 0
    deleted: int = 0
    backoffs: int = 0
    watermark: datetime | None = None
    error: str | None = None
    found: list[tuple[str, str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "account": self.account}
        out.update({name: getattr(self, name) for name in _COUNTS})
        out["since"] = iso_z(self.since) if self.since else None
        out["watermark"] = iso_z(self.watermark) if self.watermark else None
        out["error"] = self.error
        return out


@dataclass
class Report:
    started: datetime
    finished: datetime | None = None
    rows: list[Row] = field(default_factory=list)
    # Problems of the pass as a whole (a bad --since, an unknown account or source).
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(row.error is None for row in self.rows)

    def total(self, name: str) -> int:
        return sum(int(getattr(row, name)) for row in self.rows)

    @property
    def errors(self) -> int:
        return len(self.problems) + sum(1 for row in self.rows if row.error)

    def summary(self) -> dict[str, str]:
        """Flat string fields for the Redis hash the console reads: `at` is when the pass ended (epoch
        seconds), `sources` a JSON object keyed by source, summed over accounts."""
        ended = self.finished or self.started
        fields = {name: str(self.total(name)) for name in ("seen", "missing", "queued", "duplicates")}
        fields.update(at=f"{ended.timestamp():.3f}", started=iso_z(self.started), errors=str(self.errors))
        fields["sources"] = json.dumps(self.by_source(), separators=(",", ":"))
        if self.problems:
            fields["problems"] = json.dumps(self.problems)
        return fields

    def by_source(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for row in self.rows:
            entry = out.setdefault(row.source, dict.fromkeys(_COUNTS, 0) | {"accounts": 0, "errors": []})
            for name in _COUNTS:
                entry[name] += getattr(row, name)
            entry["accounts"] += 1
            if row.error:
                entry["errors"].append(f"{row.account}: {row.error}")
        return out

    def render(self) -> str:
        lines = [f"reconcile pass started {iso_z(self.started)}"]
        lines += [f"problem: {problem}" for problem in self.problems]
        header = f"{'source':<7} {'account':<34} {'since':<20} " + " ".join(f"{n:>10}" for n in _COUNTS) + "  watermark"
        lines.append(header)
        for row in self.rows:
            lines.extend(_row_lines(row))
        totals = "  ".join(f"{name} {self.total(name)}" for name in ("seen", "missing", "queued", "duplicates"))
        lines.append(f"total: {totals}  errors {self.errors}  -> {'ok' if self.ok else 'FAILED'}")
        return "\n".join(lines)


def _row_lines(row: Row) -> list[str]:
    since = iso_z(row.since) if row.since else "-"
    mark = iso_z(row.watermark) if row.watermark else "-"
    counts = " ".join(f"{getattr(row, name):>10}" for name in _COUNTS)
    lines = [f"{row.source:<7} {row.account:<34} {since:<20} {counts}  {mark}"]
    for sid, status, outcome in row.found[:SHOWN_PER_ROW]:
        lines.append(f"    {outcome:<10} {row.source} {sid} {status}")
    if len(row.found) > SHOWN_PER_ROW:
        lines.append(f"    … and {len(row.found) - SHOWN_PER_ROW} more")
    if row.error:
        lines.append(f"    error      {row.error}")
    return lines
