"""The body of an event: Standard Webhooks' {type, timestamp, data}, data from the recording's catalog entry."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from receiver.kernel.webhook_endpoints import Endpoint

PARENTS = ("call_sid", "conference_sid", "room_sid", "composition_sid")


def message_id(endpoint: Endpoint, event_type: str, source: str, sid: str) -> str:
    """One id per (endpoint, event, recording): the event emitted again (a job's retry) is the
    same message, which a receiver dedupes by `webhook-id`."""
    digest = hashlib.sha256(f"{endpoint.name}|{event_type}|{source}|{sid}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def _number(text: str | None) -> float | int | None:
    if text in (None, ""):
        return None
    value = float(text)
    return int(value) if value.is_integer() else value


def build(event_type: str, source: str, sid: str, recording: dict[str, str], console_url: str | None,
          now: float) -> dict[str, Any]:
    data: dict[str, Any] = {
        "source": source,
        "recording_sid": sid,
        "account_sid": recording.get("account_sid"),
        "status": recording.get("status"),
        **{name: recording[name] for name in PARENTS if recording.get(name)},
        "storage": {"media": recording.get("media_path"), "metadata": recording.get("metadata_path")},
        "size_bytes": _number(recording.get("media_bytes")),
        "sha256": recording.get("media_sha256"),
        "duration_seconds": _number(recording.get("duration")),
    }
    if event_type in ("recording.absent", "recording.failed"):
        data["error_code"] = recording.get("error_code")
        data["reason"] = recording.get("error_meaning")
    if event_type == "recording.deleted":
        data["deleted_at_twilio"] = recording.get("deleted_at_twilio")
    if console_url:
        data["console_url"] = f"{console_url}/recordings/{source}/{sid}"
    stamp = datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")
    return {"type": event_type, "timestamp": stamp, "data": data}
