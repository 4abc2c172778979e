"""Twilio's two date styles (RFC 2822 in the 2008 and 2010 APIs, ISO 8601 in v1) as aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any


def utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC, aware ones converted to it."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse(value: Any) -> datetime | None:
    """A datetime from either style; None for anything else (a missing date is not an error)."""
    if isinstance(value, datetime):
        return utc(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        pass
    try:
        return utc(parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError):
        return None


def parse_since(value: str | date | datetime) -> datetime:
    """A `--since` value: an ISO 8601 date (midnight UTC) or datetime (naive means UTC)."""
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = value.strip()
    if len(text) == 10:
        return parse_since(date.fromisoformat(text))
    return utc(datetime.fromisoformat(text))


def iso_z(moment: datetime) -> str:
    """'2024-05-01T10:00:00Z': fixed width, so two of them compare like the times they name."""
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def plain(value: Any) -> Any:
    """JSON-able: datetimes as ISO 8601, everything else as it is."""
    return value.isoformat() if isinstance(value, datetime) else value
