"""The common recording event every source's callback is parsed into, and its JSON payload form."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from receiver.kernel.errors import BadCallback


class Source(str, enum.Enum):
    VOICE = "voice"
    VIDEO = "video"
    MEDIA = "media"
    LEGACY = "legacy"


class Status(str, enum.Enum):
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    ABSENT = "absent"
    FAILED = "failed"
    DELETED = "deleted"


class Origin(str, enum.Enum):
    CALLBACK = "callback"
    RECONCILER = "reconciler"
    REPLAY = "replay"


# Events arrive out of order; a state only ever moves to a higher rank, so a late
# `in-progress` can never undo `completed`, `absent` or `failed`.
STATUS_RANK = {
    Status.IN_PROGRESS: 0,
    Status.COMPLETED: 1,
    Status.ABSENT: 1,
    Status.FAILED: 1,
    Status.DELETED: 2,
}

FINAL_STATUSES = frozenset({Status.COMPLETED, Status.ABSENT, Status.FAILED})

# Meanings Twilio documents for recording error codes, kept with the recording.
ERROR_MEANINGS = {
    "16101": "recording too short: no audio long enough to keep",
    "16102": "recording silent: no audio above the silence threshold",
    "16103": "recording paused for the whole duration",
    "16104": "recording could not be stored",
    "16105": "recording storage failure",
}

PAYLOAD_VERSION = 1


@dataclass(slots=True)
class RecordingEvent:
    """One thing Twilio told us (or the reconciler found) about one recording.

    Treated as immutable (`with_origin` makes a copy) but not declared frozen: a frozen
    dataclass's __init__ sets each field through object.__setattr__, which cost 2 µs of every
    callback (measured); the hot path's other small records are plain slotted dataclasses too.
    """

    source: Source
    sid: str
    status: Status
    account_sid: str
    origin: Origin = Origin.CALLBACK
    occurred_at: str | None = None
    error_code: str | None = None
    # Parent resources the recording belongs to, for search: call_sid, conference_sid, room_sid.
    related: Mapping[str, str] = field(default_factory=dict)
    # Everything else the source sent, kept verbatim for the worker and the metadata file.
    details: Mapping[str, str] = field(default_factory=dict)

    # `_value_` rather than `.value` in the two methods every callback calls: `.value` is a
    # Python-level property of Enum, ~0.2 µs a read (measured), and these run per event.
    @property
    def key(self) -> str:
        return f"{self.source._value_}:{self.sid}"

    def to_payload(self) -> dict[str, Any]:
        return {
            "v": PAYLOAD_VERSION,
            "source": self.source._value_,
            "sid": self.sid,
            "status": self.status._value_,
            "account_sid": self.account_sid,
            "origin": self.origin._value_,
            "occurred_at": self.occurred_at,
            "error_code": self.error_code,
            "related": dict(self.related),
            "details": dict(self.details),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> RecordingEvent:
        try:
            return cls(
                source=Source(payload["source"]),
                sid=str(payload["sid"]),
                status=Status(payload["status"]),
                account_sid=str(payload["account_sid"]),
                origin=Origin(payload.get("origin", Origin.CALLBACK.value)),
                occurred_at=payload.get("occurred_at"),
                error_code=payload.get("error_code"),
                related=dict(payload.get("related") or {}),
                details=dict(payload.get("details") or {}),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise BadCallback(f"payload is not a recording event: {exc!r}") from None

    def with_origin(self, origin: Origin) -> RecordingEvent:
        return RecordingEvent(
            source=self.source,
            sid=self.sid,
            status=self.status,
            account_sid=self.account_sid,
            origin=origin,
            occurred_at=self.occurred_at,
            error_code=self.error_code,
            related=self.related,
            details=self.details,
        )
