"""One account and source of an export: its counts and the cursor a resumed run starts from."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from workers.twilio_rest.timestamps import iso_z, parse

COUNTS = ("listed", "queued", "known", "archived", "failed", "other", "pending", "deleted")


@dataclass
class ExportRow:
    source: str
    account: str
    # Listed in the window: queued now, or known already (queued before: by a callback, the
    # reconciler or an earlier run), or not worth a job (pending at Twilio, deleted).
    listed: int = 0
    queued: int = 0
    known: int = 0
    # Of those queued: settled as archived, failed, or other (no media to keep, not found).
    archived: int = 0
    failed: int = 0
    other: int = 0
    pending: int = 0
    deleted: int = 0
    # Everything newer than this was listed and queued: a resumed run lists from here down.
    cursor: datetime | None = None
    done: bool = False
    error: str | None = None

    @property
    def key(self) -> str:
        return f"{self.source}:{self.account}"

    def to_json(self) -> str:
        values: dict[str, Any] = asdict(self)
        values["cursor"] = iso_z(self.cursor) if self.cursor else None
        return json.dumps(values, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> ExportRow:
        values = json.loads(raw)
        known = {f.name for f in fields(cls)}
        row = cls(**{k: v for k, v in values.items() if k in known and k != "cursor"})
        row.cursor = parse(values.get("cursor"))
        return row
