"""What the archive record says of a recording (Twilio's metadata, the callback), as rows for the page."""

from __future__ import annotations

import email.utils
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Twilio's metadata fields an operator looks for first, in this order, with their labels.
LEADING = {
    "duration": "Duration", "channels": "Channels", "source": "Source", "track_name": "Track name",
    "codec": "Codec", "type": "Type", "container_format": "Container", "format": "Format",
    "date_created": "Created", "start_time": "Started",
}
# Seconds, in every source's metadata (voice, video rooms, compositions and media recordings).
SECONDS_FIELDS = frozenset({"duration", "RecordingDuration"})
_NESTED = (dict, list)


@dataclass(frozen=True)
class Row:
    name: str
    label: str
    text: str
    # Set for a time: the page shows it with the `utc` filter, as every other time in the console.
    at: float | None = None


@dataclass
class Facts:
    twilio: list[Row] = field(default_factory=list)
    callback: list[Row] = field(default_factory=list)


def epoch_of(value: Any) -> float | None:
    """A time as Twilio writes one (RFC 2822 in the 2010 API, ISO 8601 in the newer ones), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _is_time(name: str) -> bool:
    return name.startswith("date_") or name.endswith(("_time", "_at", "Time", "Timestamp"))


def _row(name: str, value: Any, label: str = "") -> Row:
    label = label or name
    if name in SECONDS_FIELDS and str(value).lstrip("-").isdigit():
        return Row(name, label, f"{value} s")
    at = epoch_of(value) if _is_time(name) else None
    return Row(name, label, str(value), at)


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def facts(record: dict[str, Any] | None) -> Facts:
    """Rows for the scalar fields: links, subresource URIs and nested objects are left out."""
    if not record:
        return Facts()
    metadata = _object(record.get("recording"))
    twilio = [_row(name, metadata[name], label) for name, label in LEADING.items()
              if metadata.get(name) not in (None, "")]
    twilio += [_row(name, value) for name, value in sorted(metadata.items())
               if name not in LEADING and value not in (None, "") and not isinstance(value, _NESTED)
               and not name.endswith(("uri", "url"))]
    event = _object(record.get("event"))
    callback = [_row(name, event[name]) for name in ("status", "origin", "occurred_at", "error_code")
                if event.get(name) not in (None, "")]
    for group in ("related", "details"):
        values = event.get(group)
        if isinstance(values, dict):
            callback += [_row(str(k), v) for k, v in sorted(values.items()) if v not in (None, "")]
    return Facts(twilio, callback)
