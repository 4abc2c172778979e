"""Decodes raw Redis replies (bytes, numbers, RQ's timestamps) into plain Python values."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def number(value: Any, default: float = 0.0) -> float:
    try:
        return float(text(value)) if value is not None else default
    except ValueError:
        return default


def integer(value: Any, default: int = 0) -> int:
    return int(number(value, default))


def optional_number(value: Any) -> float | None:
    if value is None or text(value) == "":
        return None
    try:
        return float(text(value))
    except ValueError:
        return None


def mapping(raw: Any) -> dict[str, str]:
    """A hash reply (HGETALL) as str -> str."""
    if not isinstance(raw, Mapping):
        return {}
    return {text(k): text(v) for k, v in raw.items()}


def rq_epoch(value: Any) -> float | None:
    """RQ's stored timestamps ("2024-05-01T12:00:00.123456Z") as epoch seconds."""
    raw = text(value)
    if not raw:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return None


def epoch(moment: datetime | None) -> float | None:
    """An RQ datetime (naive means UTC in RQ) as epoch seconds."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
