"""Date formatting (RFC 2822, ISO 8601) and parsing of Twilio date filter values."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email.utils import format_datetime


class BadDate(ValueError):
    """A filter value that is neither YYYY-MM-DD nor an ISO 8601 datetime."""


def utc(dt: datetime) -> datetime:
    """Naive datetimes are taken as UTC, aware ones converted to it."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def rfc2822(dt: datetime) -> str:
    """'Fri, 14 Oct 2016 21:56:34 +0000', the 2010-04-01 and 2008-08-01 style."""
    return format_datetime(utc(dt).replace(microsecond=0))


def iso8601(dt: datetime) -> str:
    """'2015-07-30T20:00:00Z', the v1 APIs' style (second resolution, Z suffix)."""
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_filter(value: str) -> date | datetime:
    """A bare date stays a `date` (day granularity); anything with a time becomes aware UTC."""
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return utc(datetime.fromisoformat(text))
    except ValueError as exc:
        raise BadDate(value) from exc


def midnight(bound: date | datetime) -> datetime:
    """A date as its first instant (midnight UTC); a datetime as it is."""
    if isinstance(bound, datetime):
        return bound
    return datetime(bound.year, bound.month, bound.day, tzinfo=UTC)


def parse_datetime(value: str) -> datetime:
    """ISO 8601 datetime (or date, taken as midnight UTC) for v1 DateCreatedAfter/Before."""
    return midnight(parse_filter(value))


def on_or_after(created: datetime, bound: date | datetime) -> bool:
    """`DateCreated>=D`: "on or after midnight of this date"."""
    return utc(created) >= midnight(bound)


def on_or_before(created: datetime, bound: date | datetime) -> bool:
    """`DateCreated<=D`: "on or before midnight of this date", so day D itself is left out.

    Twilio's 2008 document spells it out: `DateCreated>=2009-07-04&DateCreated<=2009-07-06`
    lists what was made "between midnight Jul 04th, 2009 and midnight Jul 06th, 2009".
    """
    return utc(created) <= midnight(bound)


def same_day(created: datetime, bound: date | datetime) -> bool:
    day = bound.date() if isinstance(bound, datetime) else bound
    return utc(created).date() == day
