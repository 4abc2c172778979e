"""What an export covers: its window, sources and accounts, and a stable name for it (resumes match on it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from receiver.kernel.accounts import Account
from receiver.kernel.events import Source
from workers.twilio_rest.timestamps import iso_z


@dataclass(frozen=True)
class Plan:
    since: datetime
    until: datetime | None
    sources: tuple[Source, ...]
    accounts: tuple[Account, ...]

    @property
    def name(self) -> str:
        until = iso_z(self.until) if self.until else "-"
        sources = ",".join(s.value for s in self.sources)
        accounts = ",".join(a.sid for a in self.accounts)
        return f"{iso_z(self.since)}|{until}|{sources}|{accounts}"
