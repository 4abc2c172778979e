"""List filters shared by the APIs: Twilio's DateCreated inequality keys and v1 After/Before bounds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from starlette.datastructures import QueryParams

from .errors import ApiError
from .timefmt import (
    BadDate,
    on_or_after,
    on_or_before,
    parse_datetime,
    parse_filter,
    same_day,
    utc,
)

T = TypeVar("T")

# On the wire `DateCreated<=2024-01-02` parses as key "DateCreated<" with value "2024-01-02",
# so "<" and "<=" (and ">" and ">=") must mean the same thing: "on or before (after) midnight of
# this date", as Twilio documents; a date bound is its midnight, not the whole day.
DATE_CREATED_KEYS: dict[str, Callable[[datetime, date | datetime], bool]] = {
    "DateCreated": same_day,
    "DateCreated<": on_or_before, "DateCreated<=": on_or_before,
    "DateCreated>": on_or_after, "DateCreated>=": on_or_after,
}


def _bound(name: str, raw: str) -> date | datetime:
    try:
        return parse_filter(raw)
    except BadDate as exc:
        raise ApiError(400, f"Invalid {name} value: {raw}", 20001) from exc


def by_date_created(items: Sequence[T], params: QueryParams) -> list[T]:
    """Apply every DateCreated / DateCreated< / DateCreated> style key present in the query."""
    kept = list(items)
    for key, test in DATE_CREATED_KEYS.items():
        raw = params.get(key)
        if raw:
            bound = _bound(key, raw)
            kept = [item for item in kept if test(_created(item), bound)]
    return kept


def by_created_window(items: Sequence[T], params: QueryParams) -> list[T]:
    """v1's DateCreatedAfter (inclusive) and DateCreatedBefore (exclusive), ISO 8601."""
    kept = list(items)
    after, before = params.get("DateCreatedAfter"), params.get("DateCreatedBefore")
    if after:
        low = _datetime("DateCreatedAfter", after)
        kept = [item for item in kept if utc(_created(item)) >= low]
    if before:
        high = _datetime("DateCreatedBefore", before)
        kept = [item for item in kept if utc(_created(item)) < high]
    return kept


def by_fields(items: Sequence[T], params: QueryParams, mapping: dict[str, str]) -> list[T]:
    """Equality filters: query key -> attribute name."""
    kept = list(items)
    for key, attr in mapping.items():
        wanted = params.get(key)
        if wanted:
            kept = [item for item in kept if getattr(item, attr) == wanted]
    return kept


def _datetime(name: str, raw: str) -> datetime:
    try:
        return parse_datetime(raw)
    except BadDate as exc:
        raise ApiError(400, f"Invalid {name} value: {raw}", 20001) from exc


def _created(item: Any) -> datetime:
    created = item.date_created
    assert isinstance(created, datetime)
    return created


def truthy(raw: str | None) -> bool:
    return (raw or "").strip().lower() == "true"
